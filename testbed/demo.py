"""The demo: a simulated trading stack, the supervisor with one example profile, faults.

    scripts/demo [--profile NAME] [--keep]

Starts a private Redis and PostgreSQL in a temporary directory, the simulated stack
(testbed/simstack.py) and `trading-supervisor run` with config/examples/<NAME>.toml pointed at
them; injects the faults that profile's runbook cares about and prints each detection and
action as it happens, with its latency since the injection; prints `trading-supervisor
status`; stops everything it started (also on Ctrl-C) unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from redis import Redis

from testbed import REPO_ROOT, simstack
from testbed.daemon_process import Daemon
from testbed.postgres_server import PostgresServer
from testbed.redis_server import RedisServer
from testbed.waiting import free_port, wait_until

TOKENS = {name: "demo-token" for name in simstack.TOKEN_ENV}
FAULTS_BY_PROFILE = {
    "spx_command_center": ["stop_feed", "orphan_lock", "health_down"],
    "track7_ops": ["freeze_breaker_owner", "poison_deliveries"],
    "nautilus_hmm": ["health_down", "stall_strategy"],
    "quantzoo": ["health_down"],  # its profile watches health only
    "quantum_metrics": ["raise_margin", "stop_feed"],
}
FAULT_TIMEOUT_S = 40.0
FAULT_TIMEOUT_BY_PROFILE_S = {"quantzoo": 75.0}  # its kill waits for 60 s of failed health
AFTER_ACTION_S = 1.5  # keep listening this long after an action: more may follow
NO_ACTION_GRACE_S = 3.0  # a BREACH with nothing to engage (alert only): move on
HEAL_SETTLE_S = 3.0

TRANSITION = re.compile(r"watchdog=(\S+) status=(\S+) \(was (\S+)\): (.*)")
ACTION = re.compile(r"action actuator=(\S+) outcome=(\S+) watchdog=(\S+)(?: severity=(\S+))?(.*)")
TOOK = re.compile(r"took_ms=([\d.]+)")


# --- the profile --------------------------------------------------------------------------


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Set `key = value` (a TOML literal) in `[section]`, adding the key or section if needed."""
    header = re.search(rf"^\[{re.escape(section)}\][ \t]*$", text, flags=re.MULTILINE)
    if header is None:
        return f"{text.rstrip()}\n\n[{section}]\n{key} = {value}\n"
    nxt = re.search(r"^\[", text[header.end() :], flags=re.MULTILINE)
    end = header.end() + (nxt.start() if nxt else len(text) - header.end())
    body = text[header.end() : end]
    line = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=.*$", flags=re.MULTILINE)
    if line.search(body):
        body = line.sub(lambda _: f"{key} = {value}", body, count=1)
    else:
        body = f"\n{key} = {value}{body}"
    return text[: header.end()] + body + text[end:]


def demo_profile(text: str, stack: Stack) -> str:
    """The profile, pointed at the private servers and the simulator, free of market hours."""
    text = simstack.rewrite_profile(text, stack.ports, stack.redis.url, stack.postgres.dsn)
    text = set_key(text, "supervisor", "state_dir", json.dumps(str(stack.directory / "state")))
    text = set_key(text, "metrics", "listen", json.dumps(f"127.0.0.1:{stack.metrics_port}"))
    # The demo runs at any hour: watchdogs are not gated by the market session.
    return re.sub(r"^[ \t]*session[ \t]*=.*$", "", text, flags=re.MULTILINE)


# --- what the demo starts -------------------------------------------------------------------


@dataclass
class Stack:
    directory: Path
    redis: RedisServer
    postgres: PostgresServer
    ports: dict[int, int] = field(default_factory=simstack.allocate_ports)
    control_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    simstack: subprocess.Popen[bytes] | None = None
    daemon: Daemon | None = None
    config: Path | None = None
    namespace: str = "supervisor"

    def control(self, method: str, path: str) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.control_port}{path}"
        request = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(request, timeout=5) as answer:
            result: dict[str, object] = json.load(answer)
            return result


def start_servers(directory: Path) -> Stack:
    say("starting a private redis-server and PostgreSQL in", str(directory))
    redis = RedisServer(directory)
    redis.start()
    postgres = PostgresServer()
    try:
        postgres.init()
        postgres.start()
    except BaseException:
        redis.stop()
        postgres.destroy()
        raise
    return Stack(directory, redis, postgres)


def start_simstack(stack: Stack) -> None:
    log_path = stack.directory / "simstack.log"
    argv = [sys.executable, "-m", "testbed.simstack"]
    argv += ["--redis", stack.redis.url, "--postgres", stack.postgres.dsn]
    argv += ["--ports", json.dumps(stack.ports), "--control-port", str(stack.control_port)]
    argv += ["--tokens", json.dumps(TOKENS)]
    with log_path.open("wb") as log:
        stack.simstack = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    wait_until(lambda: ready(stack, log_path), 20, "the simulated stack")
    say("simulated stack ready: control on port", str(stack.control_port))


def ready(stack: Stack, log_path: Path) -> bool:
    if stack.simstack is not None and stack.simstack.poll() is not None:
        raise RuntimeError(f"simstack exited:\n{log_path.read_text(errors='replace')}")
    return "simstack ready" in log_path.read_text(errors="replace")


def start_supervisor(stack: Stack, profile: Path) -> None:
    text = demo_profile(profile.read_text(encoding="utf-8"), stack)
    stack.config = stack.directory / f"{profile.stem}.toml"
    stack.config.write_text(text, encoding="utf-8")
    stack.namespace = tomllib.loads(text).get("supervisor", {}).get("namespace", "supervisor")
    os.environ.update(TOKENS)
    stack.daemon = Daemon(stack.config, notify=None)
    client = Redis.from_url(stack.redis.url)
    try:
        wait_until(lambda: heartbeat(stack, client), 30, "the supervisor's heartbeat")
    finally:
        client.close()
    say(f"supervisor running (profile {profile.stem}), metrics on port", str(stack.metrics_port))


def heartbeat(stack: Stack, client: Redis) -> bool:
    assert stack.daemon is not None
    if stack.daemon.process.poll() is not None:
        raise RuntimeError(f"the supervisor exited:\n{stack.daemon.log()}")
    return bool(client.exists(f"{stack.namespace}:heartbeat"))


def stop_all(stack: Stack) -> None:
    """Stop what we started, by the PIDs we hold, newest first."""
    if stack.daemon is not None:
        try:
            stack.daemon.terminate(timeout_s=15)
        except subprocess.TimeoutExpired:
            stack.daemon.kill()
    if stack.simstack is not None and stack.simstack.poll() is None:
        stack.simstack.terminate()
        try:
            stack.simstack.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stack.simstack.kill()
            stack.simstack.wait(timeout=5)
    stack.redis.stop()
    stack.postgres.destroy()
    shutil.rmtree(stack.directory, ignore_errors=True)


# --- following the supervisor ----------------------------------------------------------------


class LogFollower:
    """New complete lines of a growing log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def lines(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        *complete, self.partial = text.split("\n")
        return complete


Actions = dict[str, dict[str, list[str]]]  # watchdog -> status -> actuators


def profile_actions(text: str) -> Actions:
    """What each watchdog of the profile engages at WARN, BREACH and CRITICAL."""
    watchdogs = tomllib.loads(text).get("watchdogs", [])
    return {
        w["name"]: {s: w.get(f"on_{s.lower()}", []) for s in ("WARN", "BREACH", "CRITICAL")}
        for w in watchdogs
    }


@dataclass
class Seen:
    """What the supervisor did since a fault was injected."""

    actions: Actions
    awaiting: set[str] = field(default_factory=set)  # watchdogs whose actuators should fire
    acted: set[str] = field(default_factory=set)  # watchdogs whose actuators fired
    detected_at: float | None = None  # a BREACH or worse with nothing to engage
    acted_at: float | None = None


def show(line: str, since: float, seen: Seen) -> None:
    now = time.monotonic()
    latency = f"+{now - since:6.2f}s"
    transition = TRANSITION.search(line)
    if transition:
        name, status, was, reason = transition.groups()
        mark = "✔" if status == "OK" else "⚠"
        what = f"detection watchdog={name} status={status} (was {was})"
        print(f"  {latency}  {mark} {what}: {reason}")
        expect_action(seen, name, status, now)
        return
    action = ACTION.search(line)
    if action:
        actuator, outcome, watchdog, severity, rest = action.groups()
        took = TOOK.search(rest)
        took_text = f" took {took.group(1)} ms" if took else ""
        print(
            f"  {latency}  ⚡ action actuator={actuator} outcome={outcome} "
            f"watchdog={watchdog} severity={severity or '-'}{took_text}"
        )
        seen.acted_at = now
        seen.awaiting.discard(watchdog)
        seen.acted.add(watchdog)


def expect_action(seen: Seen, name: str, status: str, now: float) -> None:
    engages = seen.actions.get(name, {})
    if engages.get(status):
        if name not in seen.acted:  # its action may be logged first: it goes out first
            seen.awaiting.add(name)
    elif status in ("BREACH", "CRITICAL") and name not in seen.awaiting:
        later = {s: a for s, a in engages.items() if a}
        hint = f"acts at {later}" if later else "alert only"
        print(f"             (no automatic action for {name} at {status} in this profile: {hint})")
        seen.detected_at = seen.detected_at or now


def finished(seen: Seen, now: float) -> bool:
    if seen.acted_at is not None:
        return not seen.awaiting and now - seen.acted_at > AFTER_ACTION_S
    if seen.awaiting:
        return False
    return seen.detected_at is not None and now - seen.detected_at > NO_ACTION_GRACE_S


def follow(stack: Stack, follower: LogFollower, since: float, until: float, seen: Seen) -> None:
    assert stack.daemon is not None
    while time.monotonic() < until and not finished(seen, time.monotonic()):
        for line in follower.lines():
            show(line, since, seen)
        if stack.daemon.process.poll() is not None:
            raise RuntimeError(f"the supervisor exited:\n{stack.daemon.log()[-3000:]}")
        time.sleep(0.05)


def walk_through(stack: Stack, faults: list[str], started: float, timeout_s: float) -> None:
    assert stack.daemon is not None and stack.config is not None
    actions = profile_actions(stack.config.read_text(encoding="utf-8"))
    follower = LogFollower(stack.daemon.log_path)
    follower.lines()  # startup chatter is not part of the walk-through
    for fault in faults:
        stack.control("POST", f"/fault/{fault}")
        injected = time.monotonic()
        print(f"\n▶ injecting {fault} at T+{injected - started:.1f}s ({clock()})")
        seen = Seen(actions)
        follow(stack, follower, injected, injected + timeout_s, seen)
        if seen.detected_at is None and seen.acted_at is None:
            print(f"  (no action within {timeout_s:.0f}s)")
        stack.control("POST", f"/heal/{fault}")
        healed = time.monotonic()
        print(f"◀ healed {fault} at T+{healed - started:.1f}s (automatic actions stay latched)")
        follow(stack, follower, healed, healed + HEAL_SETTLE_S, Seen(actions))


def print_status(stack: Stack) -> None:
    assert stack.config is not None
    print("\n$ trading-supervisor status")
    argv = [sys.executable, "-m", "supervisor", "status", "--config", str(stack.config)]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT, check=False
    )
    print((result.stdout + result.stderr).rstrip())


def print_keep(stack: Stack) -> None:
    assert stack.daemon is not None and stack.simstack is not None
    assert stack.redis.process is not None and stack.config is not None
    pg_pid = (stack.postgres.data / "postmaster.pid").read_text().split()[0]
    pids = [stack.daemon.process.pid, stack.simstack.pid, stack.redis.process.pid, int(pg_pid)]
    print(f"""
Left running (--keep). Explore:
  export {" ".join(f"{name}={value}" for name, value in TOKENS.items())}
  .venv/bin/trading-supervisor status --config {stack.config}
  redis-cli -p {stack.redis.port} hgetall {stack.namespace}:state
  curl -s http://127.0.0.1:{stack.metrics_port}/metrics | grep ^supervisor_
  curl -s -X POST http://127.0.0.1:{stack.control_port}/fault/stop_feed   # or /heal/..., GET /state
  supervisor log: {stack.daemon.log_path}
PIDs: supervisor {pids[0]}, simstack {pids[1]}, redis {pids[2]}, postgres {pids[3]}
Stop: kill {" ".join(map(str, pids))}; rm -rf {stack.directory} {stack.postgres.directory}""")


# --- main -------------------------------------------------------------------------------------


def say(*words: str) -> None:
    print(f"[{clock()}]", *words, flush=True)


def clock() -> str:
    return time.strftime("%H:%M:%S")


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stack_running(directory: Path, keep: bool) -> Iterator[Stack]:
    stack = start_servers(directory)
    try:
        yield stack
    except BaseException:  # Ctrl-C, SIGTERM or a failure: never leave anything behind
        keep = False
        raise
    finally:
        if keep:
            print_keep(stack)
        else:
            stop_all(stack)
            say("stopped everything the demo started")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="spx_command_center", help="config/examples/NAME")
    parser.add_argument("--profile-file", type=Path, help="a profile file instead of --profile")
    parser.add_argument("--faults", help="comma-separated faults instead of the profile's")
    parser.add_argument("--keep", action="store_true", help="leave it running to explore")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # as it happens
    profile = args.profile_file or REPO_ROOT / "config" / "examples" / f"{args.profile}.toml"
    if not profile.exists():
        print(f"scripts/demo: no profile {profile}", file=sys.stderr)
        return 2
    faults = FAULTS_BY_PROFILE.get(profile.stem, ["stop_feed"])
    if args.faults:
        faults = args.faults.split(",")
    unknown = set(faults) - set(simstack.FAULTS)
    if unknown:
        print(f"scripts/demo: unknown faults {sorted(unknown)}; known: {simstack.FAULTS}")
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    started = time.monotonic()
    try:
        timeout_s = FAULT_TIMEOUT_BY_PROFILE_S.get(profile.stem, FAULT_TIMEOUT_S)
        run_demo(profile, faults, args.keep, started, timeout_s)
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started is stopped")
        return 130
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0


def run_demo(
    profile: Path, faults: list[str], keep: bool, started: float, timeout_s: float
) -> None:
    with stack_running(Path(tempfile.mkdtemp(prefix="demo")), keep) as stack:
        start_simstack(stack)
        start_supervisor(stack, profile)
        walk_through(stack, faults, started, timeout_s)
        print_status(stack)


if __name__ == "__main__":
    sys.exit(main())
