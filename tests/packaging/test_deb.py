"""The Debian package as an admin meets it, in a Debian 12 container booted under systemd (the
nspawn recipe of tests/systemd, with its password-protected Redis beside it): two builds of
scripts/build-deb, `apt-get install ./trading-supervisor_*.deb`, nothing started by the
install, the admin's config and credential, start, READY, a trip; `apt-get install` of the
newer build, which neither stops nor restarts the running protector and keeps the admin's
config; an explicit restart that finds the trip still latched; `apt-get purge`, which leaves
nothing under /opt, /etc/trading-supervisor or the state directory."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import REPO_ROOT, nspawn
from tests.systemd.conftest import (
    CONFIG,
    CREDENTIAL,
    REDIS_CONF,
    REDIS_UNIT,
    REDIS_UNIT_TEXT,
    TRIP,
    UNIT_NAME,
    Stack,
    nspawn_works,
    supervisor_config,
)

__all__ = ["nspawn_works"]  # the fixture: skips, saying why, where containers cannot run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

STATE = "/var/lib/private/trading-supervisor"  # StateDirectory= under DynamicUser=yes
DEBS = "/srv/debs"  # the builds, bound read-only into the container
APT = {"DEBIAN_FRONTEND": "noninteractive"}
GONE_AFTER_PURGE = (
    "/opt/trading-supervisor",
    "/etc/trading-supervisor",
    "/var/lib/trading-supervisor",
    STATE,
    "/usr/bin/trading-supervisor",
    f"/lib/systemd/system/{UNIT_NAME}",
    "/usr/share/man/man1/trading-supervisor.1.gz",
    "/usr/share/doc/trading-supervisor",
)
RUNBOOKS = "/usr/share/doc/trading-supervisor/docs/operations.md"


@pytest.fixture(scope="module")
def debs(nspawn_works: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two builds of this checkout: Debian revision 1, then 2 (the newer build)."""
    out = tmp_path_factory.mktemp("debs")
    for revision in ("1", "2"):
        started = time.monotonic()
        built = subprocess.run(
            [REPO_ROOT / "scripts" / "build-deb", out],
            env={**os.environ, "DEB_REVISION": revision},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        print(f"build {revision}: {time.monotonic() - started:.1f}s; {built.stderr.strip()}")
    return out


def the_deb(debs: Path, revision: str) -> str:
    (deb,) = debs.glob(f"trading-supervisor_*-{revision}_*.deb")
    return f"{DEBS}/{deb.name}"


@pytest.fixture
def container(debs: Path, tmp_path: Path) -> Iterator[nspawn.Container]:
    stage = tmp_path / "stage"
    stage.mkdir(mode=0o755)
    password = "d7c0ffee" * 4
    nspawn.stage_file(stage, f"/etc/systemd/system/{REDIS_UNIT}", REDIS_UNIT_TEXT)
    nspawn.stage_file(stage, "/etc/testbed/redis.conf", REDIS_CONF.format(password=password))
    with nspawn.booted(
        stage, wants=[REDIS_UNIT], binds_ro=[(debs, DEBS)], console_log=tmp_path / "console.log"
    ) as booted:
        try:
            yield booted
        except BaseException:
            print(booted.diagnostics(UNIT_NAME))
            raise


def apt_get(container: nspawn.Container, *args: str) -> str:
    result = container.run("apt-get", "-y", *args, env=APT, timeout_s=180)
    return result.stdout + result.stderr


def test_install_trip_upgrade_with_the_latch_kept_and_purge(
    container: nspawn.Container, debs: Path
) -> None:
    started = time.monotonic()
    stack = Stack(container, password="d7c0ffee" * 4)
    assert container.run("dpkg", "-s", "trading-supervisor", check=False).returncode != 0
    # As on a booted machine: a Docker image's policy-rc.d (exit 101) would refuse every start
    # and stop to the maintainer scripts, and hide one that starts what it should not.
    container.run("rm", "-f", "/usr/sbin/policy-rc.d")

    installed = apt_get(container, "install", the_deb(debs, "1"))
    print(installed)
    assert "installed, not enabled, not started" in installed
    assert stack.unit("ActiveState", "UnitFileState") == {
        "ActiveState": "inactive",
        "UnitFileState": "disabled",
    }
    assert "config validate" in container.run("man", "-P", "cat", "trading-supervisor").stdout
    assert "### SupervisorDown" in container.run("cat", RUNBOOKS).stdout  # the alerts' runbooks

    # The admin's config and credential, then start: READY (the unit is Type=notify), a trip.
    stack.write_config(supervisor_config(("spx_ticks", "SPX")))
    container.write(CREDENTIAL, stack.password, mode="0600")
    stack.start_and_trip()
    assert stack.unit("ActiveState")["ActiveState"] == "active"
    before = stack.unit("MainPID")["MainPID"]

    # The newer build: installed over the running protector, which it neither stops nor
    # restarts; the admin's config and the daemon's state stay.
    upgraded = apt_get(container, "install", the_deb(debs, "2"))
    print(upgraded)
    assert "NOT restarted" in upgraded
    version = container.run("dpkg-query", "-W", "-f=${Version}", "trading-supervisor").stdout
    assert version.endswith("-2")
    assert stack.unit("MainPID", "ActiveState") == {"MainPID": before, "ActiveState": "active"}
    assert container.run("cat", CONFIG).stdout == supervisor_config(("spx_ticks", "SPX"))

    assert stack.exists(f"{STATE}/engaged.json")

    # A fresh tick, then the restart the admin chooses: only the latch keeps the trip.
    stack.write_tick("SPX", time.time())
    container.systemctl("restart", UNIT_NAME)
    assert stack.unit("MainPID")["MainPID"] != before
    latched = stack.wait_for_status("REDUCE_ONLY")
    print(f"after the upgrade and a restart: {latched}")
    assert latched == TRIP.replace("REDUCE_ONLY:", "REDUCE_ONLY (restored):")
    assert stack.cli("status").returncode == 0

    purged = apt_get(container, "purge", "trading-supervisor")
    print(purged)
    assert stack.unit("ActiveState", "LoadState") == {
        "ActiveState": "inactive",
        "LoadState": "not-found",
    }
    left = [path for path in GONE_AFTER_PURGE if stack.exists(path)]
    assert left == [], f"left after purge: {left}"
    print(f"install, trip, upgrade, purge: {time.monotonic() - started:.1f}s")
