"""`check` as a Nagios plugin: the exit code (2 critical beats 3 unknown beats 1 warning beats
0 ok), CRITICAL whenever trading is not ACTIVE or no supervisor is alive, and the plugin line,
parsed the way the monitoring-plugins guidelines define it. tests/unit/test_nagios_icinga.py
feeds the same lines to Icinga 2's own parser."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli import main
from supervisor.config.watchdog_base import AlertLevels
from supervisor.model import Status, Verdict
from supervisor.nagios import Protector, nagios_code, plugin_output, unknown_output
from supervisor.watchdogs.http_health import HttpHealthConfig
from supervisor.watchdogs.lock_ttl import LockTtlConfig
from supervisor.watchdogs.poison_queue import COUNT as POISON_COUNT
from supervisor.watchdogs.poison_queue import OLDEST as POISON_OLDEST
from supervisor.watchdogs.poison_queue import PoisonQueueConfig
from testbed import REPO_ROOT

CODE = {Status.OK: 0, Status.WARN: 1, Status.UNKNOWN: 3, Status.BREACH: 2, Status.CRITICAL: 2}
PRECEDENCE = [0, 1, 3, 2]  # later wins


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], 0),
        ([Status.OK], 0),
        ([Status.OK, Status.WARN], 1),
        ([Status.WARN, Status.UNKNOWN], 3),
        ([Status.UNKNOWN, Status.BREACH], 2),
        ([Status.CRITICAL, Status.UNKNOWN, Status.WARN], 2),
    ],
)
def test_nagios_code(statuses: list[Status], code: int) -> None:
    assert nagios_code(statuses) == code


@settings(max_examples=100)
@given(st.lists(st.sampled_from(list(Status))))
def test_nagios_code_is_the_highest_precedence(statuses: list[Status]) -> None:
    expected = max((CODE[s] for s in statuses), key=PRECEDENCE.index, default=0)
    assert nagios_code(statuses) == expected


# The plugin line as the monitoring-plugins guidelines define it; perfdata items are
# 'label'=value[UOM];[warn];[crit] with value in [-0-9.] (no exponent). Labels never hold
# ' or = (Icinga 2 splits on the first =), so quoting is only for spaces.
PLUGIN_LINE = re.compile(
    r"^TRADING-SUPERVISOR (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| (.+))?$"
)
PERF_ITEM = re.compile(
    r"('[^'=]+'|[^ '=]+)=(-?[0-9]+(?:\.[0-9]+)?)(s|%|B|KB|MB|TB|c)?"
    r";(-?[0-9.]*:?);(-?[0-9.]*:?)(?= |$)"
)
STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
LIVE = Protector(alive=True, trading_state="ACTIVE")
TICK_LEVELS = AlertLevels(10.0, 15.0)


def parse(line: str) -> tuple[int, str, list[tuple[str, str, str, str]]]:
    """(code, summary, [(label, value with unit, warn, crit)])."""
    match = PLUGIN_LINE.match(line)
    assert match, f"not a plugin line: {line!r}"
    items = []
    rest = match.group(3) or ""
    while rest:
        item = PERF_ITEM.match(rest)
        assert item, f"bad perfdata at {rest!r}"
        label, number, unit, warn, crit = item.groups()
        items.append((label.strip("'"), number + (unit or ""), warn, crit))
        rest = rest[item.end() :].removeprefix(" ")
    return STATES[match.group(1)], match.group(2), items


def verdict(subject: str, status: Status, value: float | None = 1.0, unit: str = "s") -> Verdict:
    return Verdict("ticks", subject, status, f"{subject} is {status.name}", value, unit)


def output(
    verdicts: list[Verdict],
    levels: AlertLevels = TICK_LEVELS,
    protector: Protector = LIVE,
) -> tuple[int, str]:
    return plugin_output(verdicts, lambda _v: levels, protector)


def test_plugin_line_names_the_worst_and_carries_perfdata_with_thresholds() -> None:
    verdicts = [
        verdict("SPX", Status.OK, 2.5),
        verdict("ES", Status.BREACH, 17.2),
        verdict("NQ", Status.UNKNOWN, None),
    ]
    code, line = output(verdicts)
    parsed_code, summary, items = parse(line)
    assert code == parsed_code == 2
    assert summary.startswith("1 of 3 subjects OK; ticks/ES BREACH: ES is BREACH")
    assert items == [("ticks/ES", "17.2s", "10", "15"), ("ticks/SPX", "2.5s", "10", "15")]
    # No `=U` (Icinga 2 refuses it): the subject without a value is left out, and said so.
    assert "=U" not in line
    assert summary.endswith("1 subjects without a value are not in the perfdata")


def test_labels_lose_what_parsers_split_on_and_are_quoted_for_spaces() -> None:
    _code, line = output([verdict("it's = odd|x::y", Status.OK, 3.0, "orders")])
    _state, _summary, [(label, value, _w, _c)] = parse(line)
    assert label == "ticks/it_s _ odd/x_y"
    assert " 'ticks/it_s _ odd/x_y'=3;10;15" in line
    assert value == "3"  # "orders" is not a Nagios unit of measure


@pytest.mark.parametrize(
    ("levels", "warn", "crit"),
    [
        (AlertLevels(None, 20.0), "", "20"),  # lock_ttl: max_ttl
        (AlertLevels(0.25, None), "0.25", ""),  # http_health: max_latency warns
        (AlertLevels(0.2, 0.1, "below"), "0.2:", "0.1:"),  # lower is worse: a range
        (AlertLevels(1e-12, 2.5e15), "0", ""),  # no exponent; too large for plain digits
    ],
)
def test_thresholds_of_every_shape(levels: AlertLevels, warn: str, crit: str) -> None:
    _code, line = output([verdict("SPX", Status.OK, 1e-7)], levels)
    assert parse(line)[2] == [("ticks/SPX", "0.0000001s", warn, crit)]


@pytest.mark.parametrize(
    ("protector", "code", "said"),
    [
        (LIVE, 0, "1 of 1 subjects OK"),
        (Protector(alive=False, trading_state="ACTIVE"), 2, "NO LIVE SUPERVISOR (no heartbeat)"),
        (Protector(alive=False), 2, "NO LIVE SUPERVISOR"),
        (Protector(alive=True, trading_state="FLATTEN", reason="kill by ops"), 2, "FLATTEN"),
        (Protector(alive=True, trading_state="REDUCE_ONLY"), 2, "trading REDUCE_ONLY"),
        (Protector(alive=True, trading_state="HALTED"), 2, "trading HALTED"),
        (Protector(alive=True), 3, "no trading state published"),
        (Protector(alive=False, error="redis: ConnectionError"), 3, "cannot read"),
    ],
)
def test_never_ok_while_trading_is_not_active_or_the_protector_is_dead(
    protector: Protector, code: int, said: str
) -> None:
    state, line = output([verdict("SPX", Status.OK, 1.0)], protector=protector)
    assert state == code == parse(line)[0]
    assert said in parse(line)[1]


def test_a_dead_protector_outranks_an_unknown_watchdog() -> None:
    dead = Protector(alive=False, trading_state="ACTIVE")
    assert output([verdict("SPX", Status.UNKNOWN, None)], protector=dead)[0] == 2


def test_the_unknown_line_is_a_plugin_line() -> None:
    line = unknown_output("bad config: watchdogs[0] (a).breach: invalid | x\nforged")
    assert "\n" not in line
    code, summary, items = parse(line)
    assert (code, items) == (3, [])
    assert "watchdogs[0] (a).breach" in summary


PROTECTORS = st.builds(
    Protector,
    alive=st.booleans(),
    trading_state=st.one_of(st.none(), st.sampled_from(["ACTIVE", "FLATTEN", "HALTED", "x"])),
    reason=st.text(),
    error=st.one_of(st.none(), st.text()),
)
LEVELS = st.builds(
    AlertLevels,
    warn=st.one_of(st.none(), st.floats()),
    breach=st.one_of(st.none(), st.floats()),
    direction=st.sampled_from(["above", "below"]),
)
SUBJECTS = st.one_of(st.text(min_size=1), st.text("ab :|='\"\n\r\t\x1b\u2028\u00a0é", min_size=1))


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            SUBJECTS,
            st.sampled_from(list(Status)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.sampled_from(["s", "ratio", "", "orders", "ticks/s"]),
        ),
        max_size=80,
    ),
    LEVELS,
    PROTECTORS,
)
def test_any_verdicts_give_one_parseable_plugin_line(
    rows: list[tuple[str, Status, float | None, str]], levels: AlertLevels, protector: Protector
) -> None:
    verdicts = [
        Verdict("w", subject, status, f"reason {subject}", value, unit)
        for subject, status, value, unit in rows
    ]
    code, line = output(verdicts, levels, protector)
    assert "\n" not in line
    parsed_code, _summary, items = parse(line)
    assert parsed_code == code
    assert code in (0, 1, 2, 3)
    if code == 0:
        assert protector.alive and protector.trading_state == "ACTIVE" and not protector.error
    if not protector.alive and protector.error is None:
        assert code == 2
    shown = [v for v in verdicts if v.value is not None and math.isfinite(v.value)]
    shown = [v for v in shown if abs(v.value or 0) < 1e15]
    assert len(items) == min(len(shown), 50)
    for _label, value, warn, crit in items:
        for number in (value.rstrip("s"), warn.rstrip(":"), crit.rstrip(":")):
            assert number == "" or math.isfinite(float(number))


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--watchdog", "nosuch"], "no such watchdog: nosuch"),
        (["--config", "/nonexistent/supervisor.toml"], "bad config: cannot read config file"),
        (["--bogus"], "bad arguments"),
    ],
)
def test_check_that_cannot_run_still_prints_a_plugin_line_and_exits_3(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--config", str(REPO_ROOT / "config" / "supervisor.toml"), *argv]
    assert main(args) == 3
    out = capsys.readouterr().out
    code, summary, _items = parse(out.splitlines()[0])
    assert code == 3 and said in summary


def test_every_kind_with_limits_gives_them_to_the_perfdata() -> None:
    """lock_ttl's max_ttl and http_health's max_latency were in the table, not the perfdata."""
    lock = LockTtlConfig.model_validate(
        {"name": "l", "kind": "lock_ttl", "keys": ["k"], "max_ttl": "30s"}
    )
    health = HttpHealthConfig.model_validate(
        {"name": "h", "kind": "http_health", "url": "http://127.0.0.1:9/", "max_latency": "250ms"}
    )
    poison = PoisonQueueConfig.model_validate(
        {
            "name": "p",
            "kind": "poison_queue",
            "query": "select 1",
            "warn": 1,
            "breach": 5,
            "oldest_query": "select now()",
            "oldest_warn": "1m",
            "oldest_breach": "5m",
        }
    )
    assert lock.alert_levels("k") == AlertLevels(None, 30.0)
    assert health.alert_levels("/") == AlertLevels(0.25, None)
    assert poison.alert_levels(POISON_OLDEST) == AlertLevels(60.0, 300.0)
    assert poison.alert_levels(POISON_COUNT) == AlertLevels(1.0, 5.0)
