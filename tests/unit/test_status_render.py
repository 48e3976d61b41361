"""`status` as an operator reads it: no "breaker: OPEN" on a profile that has no breaker (many
read OPEN as tripped), and with no live supervisor no watchdog row that says OK: what is
shown is the last thing a dead daemon published."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from supervisor.cli_tables import render_status
from supervisor.config.loading import load_config
from supervisor.publish.published import configured_groups
from testbed import REPO_ROOT
from tests.unit.test_example_profiles import TOKENS

PROFILES = sorted((REPO_ROOT / "config").glob("**/*.toml"))


def published(alive: bool, configured: dict[str, bool]) -> dict[str, object]:
    now = time.time()
    return {
        "alive": alive,
        "heartbeat_at": now if alive else None,
        "state": {
            "trading_state": "ACTIVE",
            "health": "OK",
            "breaker": "OPEN",
            "kill_switch": "OFF",
            "since": f"{now - 60:.3f}",
        },
        "watchdogs": {
            "spx_ticks": {"status": "OK", "value": "SPX=1s", "last_run": f"{now - 1:.3f}"},
            "margin": {"status": "WARN", "value": "0.71", "last_run": f"{now - 2:.3f}"},
        },
        "instances": [],
        "configured": configured,
    }


def field(shown: str, name: str) -> str:
    return next(line for line in shown.splitlines() if line.startswith(f"{name}:")).split(":", 1)[1]


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_a_profile_without_a_breaker_never_shows_one(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    configured = configured_groups(load_config(path))
    assert configured["breaker"] == ("reduce_only" in path.read_text(encoding="utf-8"))
    shown = render_status(published(True, configured))
    breaker = field(shown, "breaker").strip()
    if configured["breaker"]:
        assert breaker == "not tripped (OPEN)"
    else:
        assert breaker == "none configured"
    assert field(shown, "kill switch").strip() in ("OFF", "none configured")


def test_a_live_supervisor_shows_its_watchdogs_as_they_are() -> None:
    shown = render_status(published(True, {"breaker": True, "kill_switch": True}))
    rows = {line.split()[0]: line.split()[1] for line in shown.splitlines()[-2:]}
    assert rows == {"spx_ticks": "OK", "margin": "WARN"}
    assert "STALE" not in shown


def test_with_no_live_supervisor_no_watchdog_says_ok() -> None:
    shown = render_status(published(False, {"breaker": True, "kill_switch": True}))
    assert "NO LIVE SUPERVISOR" in shown
    assert "watchdogs: STALE, as last published" in shown
    table = shown.split("WATCHDOG", 1)[1].splitlines()[1:]
    assert [re.split(r"\s{2,}", row)[1] for row in table] == ["STALE (was OK)", "STALE (was WARN)"]
    assert "(last published: no supervisor is alive to update it)" in field(shown, "trading state")
