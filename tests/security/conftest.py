"""Servers for the least-privilege tests: a Redis that enforces deploy/redis/supervisor.acl as
shipped (only its password placeholder filled in, as docs/operations.md tells an operator to do)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from testbed import REPO_ROOT
from testbed.redis_server import RedisServer, running_redis

ACL_TEMPLATE = REPO_ROOT / "deploy" / "redis" / "supervisor.acl"
PASSWORD_PLACEHOLDER = "#SHA256_OF_THE_SUPERVISOR_PASSWORD"
SUPERVISOR_USER = "supervisor"
SUPERVISOR_PASSWORD = "acl-test-pw-7Qx2"  # a test value; the real one comes from a credential
# The [redis] lines of a config that logs in as that user, the password from the environment.
REDIS_CREDENTIALS = f'username = "{SUPERVISOR_USER}"\npassword = "${{REDIS_PASSWORD}}"'


def deployed_acl(directory: Path, password: str) -> Path:
    """The shipped ACL file with the placeholder replaced by the password's SHA-256."""
    template = ACL_TEMPLATE.read_text(encoding="utf-8")
    assert PASSWORD_PLACEHOLDER in template
    digest = hashlib.sha256(password.encode()).hexdigest()
    path = directory / "users.acl"
    path.write_text(template.replace(PASSWORD_PLACEHOLDER, f"#{digest}"), encoding="utf-8")
    return path


def acl_denials(admin: SyncRedis) -> list[object]:
    """What Redis refused since the last `ACL LOG RESET`, newest first."""
    return list(admin.acl_log())


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own enforcing the shipped ACL; `url` logs in as `default`, the
    administrator (full access), which plays the trading stack and the test's observer."""
    with running_redis(tmp_path, acl_file=deployed_acl(tmp_path, SUPERVISOR_PASSWORD)) as server:
        yield server


@pytest.fixture
def admin(acl_redis: RedisServer) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(acl_redis.url)
    yield client
    client.close()
