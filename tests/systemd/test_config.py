"""Config changes under systemd: `systemctl reload` applies a good config whole and refuses a
broken one whole (the old one keeps running); a config error at start is exit 78, which
RestartPreventExitStatus= keeps from being restarted in a loop."""

from __future__ import annotations

import time

import pytest

from tests.systemd.conftest import CONFIG, TIMEOUT_S, UNIT_NAME, Stack, supervisor_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S)]

RESTART_SEC = 2  # the shipped unit's RestartSec=


def test_reload_refuses_a_broken_config_and_applies_a_good_one(stack: Stack) -> None:
    now = time.time()
    stack.write_tick("SPX", now)
    stack.write_tick("ES", now)
    stack.container.systemctl("start", UNIT_NAME)
    stack.wait_for_status("ACTIVE: 1 of 1 watchdogs OK")
    pid = stack.unit("MainPID")["MainPID"]

    stack.write_config("[[watchdogs]\nname = 'half a table'\n")
    stack.container.systemctl("reload", UNIT_NAME)
    stack.container.wait_for(lambda: "reload refused" in stack.journal(), 10, "reload refused")
    refused = stack.journal("-p", "err", "-o", "cat")
    after_refusal = stack.unit("MainPID", "ActiveState", "StatusText")

    stack.write_config(supervisor_config(("spx_ticks", "SPX"), ("es_ticks", "ES")))
    stack.container.systemctl("reload", UNIT_NAME)
    reloaded = stack.wait_for_status("ACTIVE: 2 of 2 watchdogs OK")
    journal = stack.journal("-o", "cat")
    status = stack.cli("status").stdout
    print(f"{refused}\n{after_refusal}\n{reloaded}\n{status}")

    assert "reload refused, the running config stays" in refused and "not valid TOML" in refused
    assert after_refusal == {
        "MainPID": pid,
        "ActiveState": "active",
        "StatusText": "ACTIVE: 1 of 1 watchdogs OK",
    }
    assert f"reloaded config from {CONFIG}: 2 watchdogs" in journal
    assert stack.unit("MainPID")["MainPID"] == pid  # the same process, never restarted
    assert "es_ticks" in status


def test_a_config_error_fails_with_78_and_is_not_restarted(stack: Stack) -> None:
    stack.write_config(supervisor_config(("spx_ticks", "SPX")) + "\nsurprise = true\n")
    started = stack.container.run("systemctl", "start", UNIT_NAME, check=False)
    time.sleep(RESTART_SEC * 2.5)  # a restart, if one were coming, would have happened
    unit = stack.unit("NRestarts", "Result", "ExecMainStatus", "ActiveState")
    journal = stack.journal("-o", "cat")
    print(f"{started.stderr}{unit}\n{journal}")

    assert started.returncode != 0
    assert unit == {
        "NRestarts": "0",
        "Result": "exit-code",
        "ExecMainStatus": "78",
        "ActiveState": "failed",
    }
    assert "surprise" in journal  # the error names the field
    assert "status=78/CONFIG" in journal
