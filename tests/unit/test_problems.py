"""The supervisor's own problems as one typed object: labels, order, once-only messages."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.daemon.problems import Problems, Source

SUBJECTS = st.sampled_from(["", "a", "kill switch"])
STEPS = st.lists(
    st.tuples(st.booleans(), st.sampled_from(list(Source)), SUBJECTS, st.text(max_size=5)),
    max_size=30,
)


def label(source: Source, subject: str) -> str:
    return f"{source.value} {subject}" if subject else source.value


@given(STEPS)
def test_summary_keeps_the_order_first_noted_as_a_dict_of_labels_would(
    steps: list[tuple[bool, Source, str, str]],
) -> None:
    problems, model = Problems(), dict[str, str]()
    for noting, source, subject, detail in steps:
        key = label(source, subject)
        if noting:
            assert problems.note(source, detail, subject) is (key not in model)
            model[key] = detail
        else:
            assert problems.clear(source, subject) is (model.pop(key, None) is not None)
        assert problems.has(source, subject) is (key in model)
    assert problems.summary() == [f"{key}: {detail}" for key, detail in model.items()]
    assert bool(problems) is bool(model)


def test_labels_name_the_source_and_its_member() -> None:
    problems = Problems()
    problems.note(Source.WATCHDOG, "checks cut off after 300ms", "stalled_api")
    problems.note(Source.STATE_DIR, "cannot write /x: No space left on device")
    assert problems.summary() == [
        "watchdog stalled_api: checks cut off after 300ms",
        "state_dir: cannot write /x: No space left on device",
    ]
    assert problems.detail(Source.WATCHDOG, "other") is None


def test_a_failing_dependency_is_said_once_and_kept_up_to_date(
    caplog: pytest.LogCaptureFixture,
) -> None:
    problems = Problems()
    with caplog.at_level(logging.ERROR, logger="supervisor"):
        problems.failed(Source.REDIS, ConnectionError("refused\nsecond line"))
        problems.failed(Source.REDIS, TimeoutError())
        problems.failed(Source.ACTUATOR, OSError("no route"), "kill")
    assert [r.getMessage() for r in caplog.records] == [
        "redis: ConnectionError: refused (watchdogs that need it go UNKNOWN; retrying)",
        "actuator kill: OSError: no route (watchdogs that need it go UNKNOWN; retrying)",
    ]
    assert problems.summary() == ["redis: timed out", "actuator kill: OSError: no route"]
