"""`replay --prometheus`: history a desk already has in Prometheus, replayed through the real
policy before the supervisor ever ran. A real Prometheus serves a backfilled day
(`promtool tsdb create-blocks-from openmetrics`); the candidate config maps its watchdogs to
PromQL (a prometheus_query watchdog by its own query, others by --query)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from supervisor.cli import main
from testbed.config_blocks import BREAKER, ticks_watchdog
from testbed.waiting import free_port, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="prometheus and promtool are not installed: scripts/bootstrap installs them",
)

START = (int(time.time()) // 3600 - 3) * 3600  # three hours ago, on the hour: in no head block
SECONDS = 600
STALL = range(200, 260)  # SPX stops ticking for a minute


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def openmetrics() -> str:
    lines = ["# TYPE tick_age_seconds gauge"]
    for second in range(SECONDS):
        spx = second - STALL.start + 0.5 if second in STALL else 0.5
        lines.append(f'tick_age_seconds{{instrument="SPX"}} {spx} {START + second}')
        lines.append(f'tick_age_seconds{{instrument="ES"}} 0.5 {START + second}')
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prometheus")
    (root / "data.om").write_text(openmetrics(), encoding="utf-8")
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(root / "data.om"),
            str(root / "tsdb"),
        ],
        check=True,
        capture_output=True,
    )
    (root / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 30, "prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


OTHERS = """
[[watchdogs]]
name = "es_age"
kind = "prometheus_query"
url = "{url}"
query = 'tick_age_seconds{{instrument="ES"}}'
breach = 10

[[watchdogs]]
name = "margin"
kind = "margin"
redis_key = "account"
utilization = "ratio"
breach = 0.3
"""


def candidate(state_dir: Path, url: str, breach: str) -> str:
    """The config replayed: the breaker, a tick watchdog, a PromQL one and a margin one."""
    ticks = ticks_watchdog(
        name="ticks", key="ticks:{instrument}", warn="5s", breach=breach, interval=None
    )
    return f'\n[supervisor]\nstate_dir = "{state_dir}"\n' + BREAKER + ticks + OTHERS.format(url=url)


def test_a_replay_from_prometheus_trips_where_the_history_says(
    prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "candidate.toml"
    config.write_text(candidate(tmp_path / "state", prometheus, breach="30s"), "utf-8")
    code = main(
        [
            "replay",
            "--config",
            str(config),
            "--prometheus",
            prometheus,
            "--query",
            "ticks=tick_age_seconds",
            "--from",
            iso(START),
            "--to",
            iso(START + SECONDS - 1),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    fired = [line for line in out.splitlines() if "would engage breaker" in line]
    assert len(fired) == 1  # one stall, one trip
    # age > 30 s from second 230 (age 30.5), confirmed by the second run (trip_after = 2)
    tripped_at = time.strftime("%H:%M:%S", time.localtime(START + STALL.start + 31))
    assert tripped_at in fired[0]
    assert "cannot replay margin: no PromQL for it" in out
    assert "es_age" not in " ".join(fired)
    assert f"{SECONDS * 2} runs" in out  # ticks and es_age, one run per second each
