"""margin against a real HTTP server (OANDA-shaped answers) and a real redis-server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from supervisor.config.loading import load_config, redacted
from supervisor.errors import ConfigError
from supervisor.kinds import kind_gauges, watchdog_kind
from supervisor.model import Status, Verdict, Verdicts, WatchdogRun
from supervisor.protection import unmet_needs
from supervisor.publish.metrics import Metrics
from supervisor.sources.clients import Clients
from supervisor.watchdogs.base import evaluate
from supervisor.watchdogs.margin import Margin, MarginConfig
from testbed.http_server import HttpServer
from testbed.waiting import free_port

pytestmark = pytest.mark.anyio

PATH = "/api/oanda/account"
TOKEN = "s3cr3t-oanda-token"


def config(**overrides: Any) -> MarginConfig:
    fields: dict[str, Any] = {
        "name": "margin",
        "kind": "margin",
        "used": "account.marginUsed",
        "equity": "account.NAV",
        "warn": 0.25,
        "breach": 0.30,
        "critical": 0.50,
    }
    return MarginConfig.model_validate({**fields, **overrides})


def http_margin(server: HttpServer, client: httpx.AsyncClient, **overrides: Any) -> Margin:
    fields = {"url": server.url(PATH), "headers": {"Authorization": f"Bearer {TOKEN}"}}
    return Margin(config(**{**fields, **overrides}), client, None)


def account(used: object, nav: object) -> dict[str, Any]:
    return {"account": {"marginUsed": used, "NAV": nav, "currency": "USD"}}


async def one(watchdog: Margin) -> Verdict:
    [verdict] = await evaluate(watchdog, None, time.time())
    assert verdict.subject == "utilization"
    assert TOKEN not in verdict.reason
    return verdict


@pytest.mark.parametrize(
    ("used", "status"),
    [
        ("1200.0000", Status.OK),
        ("2500.0000", Status.OK),  # equal to warn: not crossed
        ("2600.0000", Status.WARN),
        ("4200.0000", Status.BREACH),
        ("7500.5000", Status.CRITICAL),
    ],
)
async def test_used_over_equity_each_status_from_oanda_strings(
    http_server: HttpServer, http_client: httpx.AsyncClient, used: str, status: Status
) -> None:
    http_server.answer_json(PATH, account(used, "10000.0000"))
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.status is status
    assert verdict.value == pytest.approx(float(used) / 10000)
    assert verdict.unit == "ratio"


async def test_reason_names_ratio_threshold_and_amounts(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, account("4200.0000", 10000))
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.reason == "utilization 0.420 > 0.300 (used 4200 / equity 10000)"
    assert verdict.threshold == 0.30
    http_server.answer_json(PATH, account(1234.5, 10000))
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.reason == "utilization 0.123 (used 1234.5 / equity 10000)"
    assert verdict.threshold == 0.30  # the breach level when nothing is crossed


async def test_headers_are_sent(http_server: HttpServer, http_client: httpx.AsyncClient) -> None:
    http_server.answer_json(PATH, account("1", "10"))
    await one(http_margin(http_server, http_client))
    [seen] = http_server.seen(PATH)
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("nav", [0, "0.0000", "-5.0000"])
async def test_equity_zero_or_negative_is_unknown_with_the_reason(
    http_server: HttpServer, http_client: httpx.AsyncClient, nav: object
) -> None:
    http_server.answer_json(PATH, account("100.0000", nav))
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith("utilization: equity ")
    assert "<= 0: ratio undefined (used 100 / equity " in verdict.reason


@pytest.mark.parametrize(
    ("used", "nav", "reason"),
    [
        ("100", "n/a", "utilization: equity 'account.NAV': not a number: 'n/a'"),
        ("lots", "1000", "utilization: used 'account.marginUsed': not a number: 'lots'"),
        ("100", "", "utilization: equity 'account.NAV': value is empty"),
        (True, "1000", "utilization: used 'account.marginUsed': not a number: True"),
        ({"x": 1}, "1000", "utilization: used 'account.marginUsed': not a number: a dict"),
        ("100", None, "utilization: equity missing: no 'account.NAV' in the answer"),
        ("-3", "1000", "utilization: used -3 < 0: not a margin figure (used -3 / equity 1000)"),
    ],
)
async def test_unusable_fields_are_unknown_naming_the_field(
    http_server: HttpServer, http_client: httpx.AsyncClient, used: object, nav: object, reason: str
) -> None:
    http_server.answer_json(PATH, account(used, nav))
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == reason


async def test_utilization_path_read_directly(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, {"risk": {"margin_ratio": "0.31"}})
    watchdog = http_margin(
        http_server, http_client, used=None, equity=None, utilization="risk.margin_ratio"
    )
    verdict = await one(watchdog)
    assert verdict.status is Status.BREACH
    assert verdict.reason == "utilization 0.310 > 0.300"


async def test_http_error_and_non_json_are_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, {"errorMessage": "Insufficient authorization"}, status=401)
    verdict = await one(http_margin(http_server, http_client))
    assert (verdict.status, verdict.reason) == (
        Status.UNKNOWN,
        f"utilization: HTTP 401 from {PATH}",
    )
    http_server.answer_raw(PATH, b"<html>maintenance</html>")
    verdict = await one(http_margin(http_server, http_client))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == "utilization: response is not JSON (HTTP 200)"


async def test_service_down_is_unknown_not_an_error(http_client: httpx.AsyncClient) -> None:
    cfg = config(url=f"http://127.0.0.1:{free_port()}{PATH}", timeout="1s")
    verdict = await one(Margin(cfg, http_client, None))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason.startswith("utilization: http: ConnectError")


async def test_no_answer_in_time_is_unknown(
    http_server: HttpServer, http_client: httpx.AsyncClient
) -> None:
    http_server.answer_json(PATH, account("1", "10"), delay_s=3)
    started = time.monotonic()
    verdict = await one(http_margin(http_server, http_client, timeout="300ms"))
    assert time.monotonic() - started < 2.5  # cut off, not the 3 s answer
    assert verdict.status is Status.UNKNOWN
    assert "300ms" in verdict.reason


async def test_redis_hash_used_and_equity(redis: Redis) -> None:
    cfg = config(redis_key="oanda:account", used="marginUsed", equity="NAV")
    watchdog = Margin(cfg, None, redis)
    await redis.hset("oanda:account", mapping={"marginUsed": "3500.0000", "NAV": "10000.0000"})
    verdict = await one(watchdog)
    assert verdict.status is Status.BREACH
    assert verdict.reason == "utilization 0.350 > 0.300 (used 3500 / equity 10000)"
    await redis.hset("oanda:account", "NAV", "0")
    verdict = await one(watchdog)
    assert verdict.status is Status.UNKNOWN
    assert "equity 0 <= 0" in verdict.reason


async def test_redis_hash_utilization_missing_and_wrong_type(redis: Redis) -> None:
    cfg = config(redis_key="risk:margin", used=None, equity=None, utilization="ratio")
    watchdog = Margin(cfg, None, redis)
    verdict = await one(watchdog)
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == "utilization: hash 'risk:margin' is missing or has none of the fields"
    await redis.hset("risk:margin", "ratio", "0.12")
    assert (await one(watchdog)).status is Status.OK
    await redis.hset("risk:margin", "ratio", "high")
    verdict = await one(watchdog)
    assert verdict.reason == "utilization: utilization 'ratio': not a number: 'high'"
    await redis.delete("risk:margin")
    await redis.set("risk:margin", "0.1")
    verdict = await one(watchdog)
    assert verdict.status is Status.UNKNOWN
    assert "WRONGTYPE" in verdict.reason


def test_design_example_is_valid_and_the_sources_are_exclusive() -> None:
    example = config(
        url="http://127.0.0.1:8100/api/oanda/account",
        headers={"Authorization": "Bearer x"},
        on_breach=["kill_flag"],
    )
    assert example.used == "account.marginUsed"
    bad: list[dict[str, Any]] = [
        {},  # no source
        {"url": "http://h/a", "redis_key": "k"},  # two sources
        {"redis_key": "k", "headers": {"A": "b"}},  # headers without url
        {"url": "http://h/a", "equity": None},  # used without equity
        {"url": "http://h/a", "utilization": "r"},  # both formulas
        {"url": "http://h/a", "used": "a..b"},  # bad jmespath
        {"url": "http://h/a", "direction": "below", "warn": 0.5, "breach": 0.4, "critical": 0.3},
        {"url": "ftp://h/a"},
    ]
    for overrides in bad:
        with pytest.raises(ValidationError):
            config(**overrides)
    assert config(redis_key="k", used="margin-used").used == "margin-used"  # a field, not a path


async def test_registered_and_feeds_its_gauge(
    http_server: HttpServer, http_client: httpx.AsyncClient, redis: Redis
) -> None:
    http_server.answer_json(PATH, account("4200", "10000"))
    cfg = config(url=http_server.url(PATH))
    watchdog = watchdog_kind("margin").build(cfg, Clients(redis, http_client))
    verdicts = await evaluate(watchdog, None, time.time())
    metrics = Metrics(kind_gauges=kind_gauges())
    metrics.observe_run(
        "margin", WatchdogRun("margin", Status.BREACH, Verdicts.of(verdicts), time.time(), 0.01)
    )
    value = metrics.registry.get_sample_value(
        "supervisor_margin_utilization_ratio", {"watchdog": "margin"}
    )
    assert value == pytest.approx(0.42)


def test_the_margin_example_loads_from_toml_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OANDA_TOKEN", TOKEN)
    path = tmp_path / "supervisor.toml"
    path.write_text(MARGIN_EXAMPLE)
    settings = load_config(path)
    assert [p for p in unmet_needs(settings) if p.startswith("watchdogs")] == []
    [cfg] = settings.watchdogs
    assert isinstance(cfg, MarginConfig)
    assert cfg.headers["Authorization"].get_secret_value() == f"Bearer {TOKEN}"
    assert TOKEN not in json.dumps(redacted(settings))
    path.write_text(MARGIN_EXAMPLE.replace('equity = "account.NAV"', 'redis_key = "acct"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "watchdogs[0] (margin)" in str(caught.value)
    assert "exactly one of 'url' (HTTP JSON) and 'redis_key'" in str(caught.value)


MARGIN_EXAMPLE = """
[actuators.kill_flag]
kind = "redis_flag"
level = "halted"
key = "ops:kill_switch"
value = "1"

[[watchdogs]]
name = "margin"
kind = "margin"
url = "http://127.0.0.1:8100/api/oanda/account"
headers = { Authorization = "Bearer ${OANDA_TOKEN}" }
used = "account.marginUsed"       # jmespath; ratio = used / equity
equity = "account.NAV"            # or: utilization = "<jmespath to a ratio field>"
warn = 0.25
breach = 0.30
critical = 0.50
on_breach = ["kill_flag"]
"""
