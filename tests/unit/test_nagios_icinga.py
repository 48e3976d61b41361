"""`check`'s perfdata read by Icinga 2's own parser (Debian's icinga2-bin, `icinga2 console`):
every item is accepted, none is lost or merged with its neighbour, and what Icinga stores is
the label, value and thresholds `check` meant."""

from __future__ import annotations

import random

import pytest

from supervisor.config.watchdog_base import AlertLevels
from supervisor.model import Status, Verdict
from supervisor.nagios import Protector, plugin_output
from testbed.icinga import icinga2, parse_items, parse_plugin_output, split_perfdata
from tests.unit.test_nagios import parse

ALIVE = Protector(alive=True, trading_state="ACTIVE")
AWKWARD = [
    "SPX",
    "it's = odd",
    "a b  c",
    "x::y",
    'quote"d',
    "pipe|d",
    "back\\slash",
    "esc\x1b[31m",
    "new\nline",
    "é ü",
    "tab\there",
    "nbsp\u00a0x",
    "'",
    "=",
    "orders:lock:spx",
]
VALUES = [0.0, -0.0, 1.0, -3.5, 0.25, 1e-7, 1e-12, 123456789.0, 9.99e14, 1e15, 2e300]
VALUES += [float("nan"), float("inf"), -float("inf"), None]  # type: ignore[list-item]


@pytest.fixture(scope="module")
def binary() -> str:
    path = icinga2()
    if path is None:
        pytest.skip("icinga2 is not installed: scripts/bootstrap installs it (apt icinga2-bin)")
    return path


def test_the_parser_refuses_what_icinga_refuses(binary: str) -> None:
    with pytest.raises(AssertionError, match="Can't convert 'U'"):
        parse_items(["'ticks/ES'=U"], binary)  # what `check` printed before
    assert split_perfdata("'a=b'=1 c=2") == ["'a=b'=1", "c=2"]  # "a", then "'b'=1 c=2"
    assert len(split_perfdata("'a=b'=1 c=2")) == 2  # ...and the label is lost either way


def verdict_sets() -> list[tuple[list[Verdict], AlertLevels]]:
    chosen = random.Random(17)  # the same awkward cases every run
    sets = []
    for direction in ("above", "below"):
        for warn, breach in ((10.0, 15.0), (None, 20.0), (0.25, None), (1e-12, 1e16)):
            verdicts = [
                Verdict(
                    "w.x-1",
                    subject,
                    chosen.choice(list(Status)),
                    f"reason {subject}",
                    chosen.choice(VALUES),
                    chosen.choice(["s", "ratio", "", "orders"]),
                )
                for subject in AWKWARD
            ]
            sets.append((verdicts, AlertLevels(warn, breach, direction)))
    return sets


@pytest.mark.parametrize("case", range(8))
def test_icinga_reads_every_item_as_meant(binary: str, case: int) -> None:
    verdicts, levels = verdict_sets()[case]
    _code, line = plugin_output(verdicts, lambda _v: levels, ALIVE)
    ours = parse(line)[2]
    stored = parse_plugin_output(line, binary)
    assert len(stored) == len(ours) > 0
    for (label, value, warn, crit), seen in zip(ours, stored, strict=True):
        number, unit = (value[:-1], "seconds") if value.endswith("s") else (value, "")
        assert (seen["label"], seen["unit"]) == (label, unit)
        assert seen["value"] == pytest.approx(float(number))
        # A range ("10:", lower is worse) is kept by Icinga as no threshold, not refused.
        for mine, theirs in ((warn, seen["warn"]), (crit, seen["crit"])):
            if mine == "" or mine.endswith(":"):
                assert theirs is None
            else:
                assert theirs == pytest.approx(float(mine))
