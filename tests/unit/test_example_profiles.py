"""config/examples/: one profile per runbook; each must validate and build as shipped.

Every profile is written for the real addresses of config/examples/STACK_CONTRACT.md, opens
with the runbook → watchdog/actuator table, and passes `trading-supervisor config validate`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import protection
from supervisor.config.loading import load_config
from supervisor.config.settings import Settings
from supervisor.sources import clients

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "config" / "examples"
CONTRACT = EXAMPLES / "STACK_CONTRACT.md"
PROFILES = (
    "spx_command_center.toml",
    "track7_ops.toml",
    "nautilus_hmm.toml",
    "quantzoo.toml",
    "quantum_metrics.toml",
)
# The real ports of the contract: the runbooks' HTTP services, Redis and PostgreSQL.
CONTRACT_PORTS = frozenset({3001, 8002, 8003, 8009, 8011, 9090, 8001, 8888, 8100, 6379, 5432})
TOKENS = {"SPX_API_TOKEN": "t-spx", "OPS_API_TOKEN": "t-ops", "SAFETY_API_TOKEN": "t-safety"}

URL = re.compile(r"\b[a-z][a-z0-9+]*://([^/\s\"'<>]+)")
HOST_PORT = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}|localhost):(\d+)\b")


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)


def load(name: str) -> Settings:
    return load_config(EXAMPLES / name)


def test_the_examples_are_exactly_the_five_runbook_profiles() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == sorted(PROFILES)


def test_the_contract_lists_every_allowed_port() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    for port in CONTRACT_PORTS:
        assert re.search(rf"\b{port}\b", text), f"port {port} is not in {CONTRACT.name}"


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_every_kind_is_implemented(name: str) -> None:
    settings = load(name)
    assert protection.unmet_needs(settings) == []
    assert settings.watchdogs, "a profile without watchdogs protects nothing"
    assert settings.actuators, "a profile without actuators cannot act toward safety"
    assert settings.supervisor.namespace != "supervisor", "namespace names the system"
    assert settings.redis.url == "redis://127.0.0.1:6379/0"


@pytest.mark.anyio
@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("name", PROFILES)
async def test_profile_builds(name: str) -> None:
    settings = load(name)
    # connects lazily: no I/O here
    opened = clients.open_clients(settings.redis, settings.postgres, "test")
    try:
        built = protection.build_protection(settings, opened)
    finally:
        await clients.close_clients(opened)
    assert set(built.watchdogs) == {w.name for w in settings.watchdogs}
    assert set(built.actuators) == set(settings.actuators)
    assert set(built.sessions) == set(settings.sessions)


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("name", PROFILES)
def test_every_session_is_used(name: str) -> None:
    settings = load(name)
    used_sessions = {w.session for w in settings.watchdogs if w.session}
    assert used_sessions == set(settings.sessions), "a session no watchdog uses"


@pytest.mark.parametrize("name", PROFILES)
def test_profile_opens_with_the_runbook_table(name: str) -> None:
    lines = (EXAMPLES / name).read_text(encoding="utf-8").splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert lines[0].startswith("#"), "the file must start with the comment table"
    table = "\n".join(header)
    assert "→" in table
    for part in ("Runbook check → watchdog", "Runbook action → actuator", "Left to people"):
        assert part in table, f"the comment table lacks {part!r}"


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("name", PROFILES)
def test_every_address_is_a_contract_port_on_loopback(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    # The supervisor's own metrics listener is not an address of the watched stack.
    own = load(name).metrics.listen
    assert own.startswith("127.0.0.1:")
    assert "localhost" not in text, "write 127.0.0.1 literally (the simulator rewrites it)"
    for match in URL.finditer(text):
        netloc = match.group(1).rpartition("@")[2]
        host, _, port = netloc.partition(":")
        assert host == "127.0.0.1", f"{match.group(0)}: host must be 127.0.0.1"
        assert port.isdigit() and int(port) in CONTRACT_PORTS, f"{match.group(0)}: port"
    for match in HOST_PORT.finditer(text):
        if match.group(0) == own:
            continue
        assert match.group(1) == "127.0.0.1", match.group(0)
        assert int(match.group(2)) in CONTRACT_PORTS, f"{match.group(0)}: not a contract port"


@pytest.mark.parametrize("name", PROFILES)
def test_config_validate_command_accepts_profile(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERVISOR_")}
    env.update(TOKENS)
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "config", "validate", str(EXAMPLES / name)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
