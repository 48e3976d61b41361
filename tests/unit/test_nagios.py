"""`check` as a Nagios plugin: the exit code (2 critical beats 3 unknown beats 1 warning beats
0 ok) and the plugin line, parsed the way the monitoring-plugins guidelines define it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.model import Status, Verdict
from supervisor.nagios import nagios_code, plugin_output

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
# 'label'=value[UOM];[warn];[crit] with "U" for an unknown value.
PLUGIN_LINE = re.compile(
    r"^TRADING-SUPERVISOR (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| (.+))?$"
)
PERF_ITEM = re.compile(
    r"('(?:[^']|'')+'|[^ '=]+)=(U|-?[0-9.e+-]+(?:s|%|B|KB|MB|TB|c)?)(?:;([0-9.e+-]*);([0-9.e+-]*))?"
)
STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def parse(line: str) -> tuple[int, str, list[tuple[str, str, str, str]]]:
    match = PLUGIN_LINE.match(line)
    assert match, f"not a plugin line: {line!r}"
    items = []
    rest = match.group(3) or ""
    while rest:
        item = PERF_ITEM.match(rest)
        assert item, f"bad perfdata at {rest!r}"
        items.append((item.group(1), item.group(2), item.group(3) or "", item.group(4) or ""))
        rest = rest[item.end() :].lstrip(" ")
    return STATES[match.group(1)], match.group(2), items


def verdict(subject: str, status: Status, value: float | None = 1.0, unit: str = "s") -> Verdict:
    return Verdict("ticks", subject, status, f"{subject} is {status.name}", value, unit)


def test_plugin_line_names_the_worst_and_carries_perfdata_with_thresholds() -> None:
    verdicts = [
        verdict("SPX", Status.OK, 2.5),
        verdict("ES", Status.BREACH, 17.2),
        verdict("NQ", Status.UNKNOWN, None),
    ]
    code, summary, items = parse(plugin_output(verdicts, {"ticks": (10.0, 15.0)}))
    assert code == 2
    assert summary.startswith("1 of 3 subjects OK; ticks/ES BREACH: ES is BREACH")
    assert items[0] == ("ticks/ES", "17.2s", "10", "15")
    assert ("ticks/NQ", "U", "", "") in items
    assert ("ticks/SPX", "2.5s", "10", "15") in items


def test_labels_that_need_quotes_get_them() -> None:
    line = plugin_output([verdict("it's = odd", Status.OK, 3.0, "orders")], {})
    _code, _summary, [(label, value, _w, _c)] = parse(line)
    assert label == "'ticks/it''s = odd'"
    assert value == "3"  # "orders" is not a Nagios unit of measure


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.text(min_size=1), st.text("ab |='\"\n\r\t\x1b\u2028é", min_size=1)),
            st.sampled_from(list(Status)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.sampled_from(["s", "ratio", "", "orders", "ticks/s"]),
        ),
        max_size=80,
    )
)
def test_any_verdicts_give_one_parseable_plugin_line(
    rows: list[tuple[str, Status, float | None, str]],
) -> None:
    verdicts = [
        Verdict("w", subject, status, f"reason {subject}", value, unit)
        for subject, status, value, unit in rows
    ]
    line = plugin_output(verdicts, {"w": (1.0, 2.0)})
    assert "\n" not in line
    code, _summary, items = parse(line)
    assert code == nagios_code([v.status for v in verdicts])
    assert len(items) == min(len(verdicts), 50)
