"""cli.nagios_code: 2 (critical) beats 3 (unknown) beats 1 (warning) beats 0 (ok)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cli import nagios_code
from supervisor.model import Status

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
