"""How each fault of the schedule is done to the real processes: `begin()` and `end()` per
kind, and the garbage values. Who a process fault hits is read from the lease at the moment
it begins."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from testbed.daemon_process import Daemon
from testbed.nemesis.schedule import Fault
from testbed.nemesis.stack import NAMESPACE, Instance, Stack

HASH_KEYS = ("engaged", "reset", "state")


def garbage_value(kind: str) -> bytes:
    if kind == "huge_int":
        return b'{"level":"HALTED","reason":"x","at":1' + b"0" * 400 + b"}"
    if kind == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if kind == "not_utf8":
        return b'\xff\xfe{"\x80garbage'
    if kind == "wrong_shape":
        return b"[1, 2, 3]"
    if kind == "max_int":
        return b"9223372036854775807"
    return b"not a number"


def write_garbage(client: Redis, key: str, detail: dict[str, Any]) -> None:
    kind = str(detail["value"])
    if kind == "wrong_type":
        client.delete(key)
        client.rpush(key, b"garbage")
        return
    value = garbage_value(kind)
    found = client.type(key)
    found = found.decode() if isinstance(found, bytes) else str(found)
    short = key.removeprefix(f"{NAMESPACE}:")
    if found == "hash" or short in HASH_KEYS or short.startswith("instance:"):
        if found not in ("hash", "none"):
            client.delete(key)
        client.hset(key, str(detail.get("field", "bogus")), value)
    elif found == "stream":
        client.xadd(key, {"id": value, "kind": value})
    elif found == "set":
        client.sadd(key, value)
    else:
        if found not in ("string", "none"):
            client.delete(key)
        client.set(key, value)


@dataclass
class Open:
    """A fault begun: what the checker needs, and what `end()` undoes."""

    fault: Fault
    start_s: float
    instance: Instance | None = None
    was_leader: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    duplicate: Daemon | None = None
    storm: threading.Thread | None = None


def leader_name(stack: Stack) -> str | None:
    try:
        with stack.admin() as client:
            raw = client.get(f"{NAMESPACE}:leader")
    except (RedisError, OSError):
        return None
    return raw.decode(errors="replace") if isinstance(raw, bytes) else None


def resolve(stack: Stack, role: str | None) -> tuple[Instance | None, bool]:
    """The instance a role names now, and whether it holds the lease."""
    if role is None:
        return None, False
    alive = [i for i in stack.instances.values() if i.ready()]
    if not alive:
        return None, False
    leader = leader_name(stack)
    holder = next((i for i in alive if i.name == leader), None)
    if role == "leader":
        target = holder or alive[0]
    else:
        others = [i for i in alive if i is not holder]
        target = others[0] if others else alive[-1]
    return target, target is holder


def begin(stack: Stack, fault: Fault, now_s: float) -> Open:  # noqa: C901 (likewise)
    instance, was_leader = resolve(stack, fault.role)
    opened = Open(fault, now_s, instance, was_leader, dict(fault.detail))
    if fault.role is not None and instance is None:
        opened.detail["skipped"] = "no live instance"
        return opened
    kind = fault.kind
    if kind == "sigstop":
        assert instance is not None
        instance.signal(signal.SIGSTOP)
        instance.stopped = True
    elif kind in ("sigkill", "garbage_file"):
        assert instance is not None and instance.daemon is not None
        instance.held_down = True
        instance.daemon.kill()
        if kind == "garbage_file":
            path = instance.state_dir / str(fault.detail["file"])
            path.write_bytes(garbage_value(str(fault.detail["value"])))
    elif kind == "blackhole":
        assert instance is not None
        instance.proxy.blackhole()
    elif kind == "clock":
        assert instance is not None
        if instance.offset_file is None:
            opened.detail["skipped"] = "libfaketime not installed"
        else:
            instance.offset_file.write_text(f"{float(fault.detail['offset_s']):+.3f}\n")
    elif kind == "reload_storm":
        assert instance is not None
        opened.storm = threading.Thread(
            target=_storm, args=(instance, int(fault.detail["count"]), fault.duration_s)
        )
        opened.storm.start()
    elif kind == "duplicate_id":
        assert instance is not None
        opened.duplicate = _start_duplicate(stack, instance)
    elif kind == "redis_restart":
        stack.redis.kill()
    elif kind == "flushall":
        if not _infra(stack, lambda client: client.flushall()):
            opened.detail["skipped"] = "Redis away"
        stack.feed.write()  # ticks back at once: only the namespace's keys stay lost
    elif kind == "garbage":
        key = _garbage_key(stack, fault.detail)
        opened.detail["key"] = key
        if not _infra(stack, lambda client: write_garbage(client, key, fault.detail)):
            opened.detail["skipped"] = "Redis away"
    elif kind == "pg_stop":
        stack.postgres.stop()
    return opened


def end(stack: Stack, opened: Open) -> None:  # noqa: C901 (one branch per kind)
    instance, kind = opened.instance, opened.fault.kind
    if "skipped" in opened.detail:
        return
    if kind == "sigstop" and instance is not None:
        instance.signal(signal.SIGCONT)
        instance.stopped = False
    elif kind in ("sigkill", "garbage_file") and instance is not None:
        if instance.offset_file is not None:
            instance.offset_file.write_text("+0\n")  # a restarted host has NTP's time
        instance.start()
    elif kind == "blackhole" and instance is not None:
        instance.proxy.forward()
    elif kind == "clock" and instance is not None and instance.offset_file is not None:
        instance.offset_file.write_text("+0\n")
    elif kind == "reload_storm" and opened.storm is not None:
        opened.storm.join(timeout=30)
    elif kind == "duplicate_id" and opened.duplicate is not None:
        if opened.duplicate.process.poll() is not None:
            opened.detail["exit_code"] = opened.duplicate.process.returncode
        else:
            opened.detail["exit_code"] = "ran until stopped"
            opened.duplicate.terminate(timeout_s=15)
    elif kind == "redis_restart":
        stack.redis.start()
        stack.feed.write()
    elif kind == "pg_stop":
        stack.postgres.start()


def _storm(instance: Instance, count: int, over_s: float) -> None:
    for _ in range(count):
        if instance.ready() and not instance.stopped:  # as `systemctl reload` would
            instance.signal(signal.SIGHUP)
        time.sleep(over_s / count)


def _start_duplicate(stack: Stack, instance: Instance) -> Daemon:
    """A second process with the same instance_id and namespace (its own state_dir, Redis
    directly): an operator's copy-paste of a config."""
    folder = stack.directory / f"{instance.name}-dup-{len(stack.extras)}"
    folder.mkdir()
    text = instance.config.read_text(encoding="utf-8")
    text = text.replace(str(instance.state_dir), str(folder / "state"))
    text = text.replace(instance.proxy.url(), stack.redis.url)
    config = folder / "supervisor.toml"
    config.write_text(text, encoding="utf-8")
    daemon = Daemon(config, None)
    stack.extras.append(daemon)
    return daemon


def _garbage_key(stack: Stack, detail: dict[str, Any]) -> str:
    short = str(detail["key"])
    if short == "instance:*":
        names = sorted(stack.instances)
        short = f"instance:{names[int(float(detail['instance_pick']) * len(names))]}"
    return f"{NAMESPACE}:{short}"


def _infra(stack: Stack, action: Callable[[Redis], object]) -> bool:
    """Do `action` on Redis; False when Redis is away (another fault): the record says so."""
    try:
        with stack.admin() as client:
            action(client)
    except (RedisError, OSError):
        return False
    return True
