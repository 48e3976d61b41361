"""A real systemd, booted in a throwaway container, to run the shipped unit under.

How a container is made (every mount lives in a private mount namespace that dies with
systemd-nspawn, so nothing is left mounted on the host):

- a cgroup of its own: systemd-nspawn --keep-unit runs the container in the cgroup it was
  started in, and the container's systemd needs one it may write to. The launching shell
  joins `NAME` in each cgroup hierarchy nspawn uses (cgroup v2: /sys/fs/cgroup/NAME; the
  hybrid layout: /sys/fs/cgroup/{systemd,unified}/NAME), removed when the container is gone;
- `unshare -m --propagation private`, then a tmpfs holding an overlay whose lower layer is
  the host's root and whose upper layer is on that tmpfs: the container sees the host's
  installed packages, and everything it writes disappears with the tmpfs;
- a tmpfs on /run/systemd/nspawn, where nspawn would otherwise leave files in the host's /run;
- the overlay's /dev emptied (nspawn builds its own; the host's root file system holds a
  stray /dev/console file under the devtmpfs mount point);
- a "stage" directory copied over the root: unit files, configs, a fresh machine-id, and
  `testbed.target`, the unit the container boots into (basic.target plus what it wants);
- `systemd-nspawn -b --register=no --keep-unit --private-network --tmpfs=/tmp`: no
  machined, no host systemd involved, its own loopback (every port is free), a private /tmp.

Commands run in the container through `nsenter -t <its systemd> -a`, with a timeout each.
Teardown: SIGTERM to nspawn (the container powers off, ~0.2 s); if that does not finish in
time, SIGKILL to each PID in the container's cgroups (ours by construction) and to nspawn;
then the cgroup folders are removed. Nothing else is signalled.

`build_in_chroot()` runs a command chrooted into the same kind of overlay, to build something
at the path it will have in a container (a venv in /opt) without writing to the host's /opt.

`unavailable_reason()` says, once per process, why containers cannot run here (not root, no
CAP_SYS_ADMIN, no overlayfs, an unprivileged container, no writable cgroups), or None.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from testbed.waiting import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
NSPAWN_RUNTIME = Path("/run/systemd/nspawn")
TARGET = "testbed.target"
CAP_SYS_ADMIN = 21
TOOLS = ("systemd-nspawn", "unshare", "nsenter", "mount", "chroot")
# Commands run in the container get this environment, not pytest's (PATH under pyenv, a
# NOTIFY_SOCKET or JOURNAL_STREAM of the host would only confuse them).
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_LESS": "",
}
BOOT_TIMEOUT_S = 30.0
POWEROFF_TIMEOUT_S = 10.0

# Runs as root in the process that becomes systemd-nspawn: join the cgroups, build the
# overlay in a private mount namespace, then exec nspawn. Arguments: WORK STAGE NSPAWN-ARGS...
BOOT_SCRIPT = r"""
set -eu
work=$1 stage=$2
shift 2
for cgroup in $TESTBED_CGROUPS; do echo $$ > "$cgroup/cgroup.procs"; done
mount -t tmpfs -o mode=0755 testbed "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay testbed -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
mount -t tmpfs -o mode=0755 testbed /run/systemd/nspawn
find "$work/root/dev" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
# tar, not cp -a: directories the root already has (/, /etc) keep their owner and mode.
tar -C "$stage" -cf - . | tar -C "$work/root" -xf - --no-overwrite-dir
exec systemd-nspawn -D "$work/root" "$@"
"""

# Runs a command chrooted into an overlay of the host's root, and copies one directory out:
# e.g. a venv created at its final path (a venv is not relocatable) without touching the
# host. INPUT (a host directory) is copied to /tmp/testbed-input first: the overlay's lower
# layer is the root file system only, so a host /tmp on a tmpfs would not be in it.
# Arguments: WORK INPUT INSIDE OUTSIDE COMMAND (a shell line, run with `chroot ROOT sh -c`).
CHROOT_SCRIPT = r"""
set -eu
work=$1 input=$2 inside=$3 outside=$4 command=$5
mount -t tmpfs -o mode=0755 testbed "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay testbed -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
mount --rbind /dev "$work/root/dev"
mount -t proc proc "$work/root/proc"
mkdir -p "$work/root/tmp"
cp -a "$input" "$work/root/tmp/testbed-input"
chroot "$work/root" sh -c "$command"
cp -a "$work/root$inside" "$outside"
"""

# Trial mounts: what the boot script needs, without booting anything.
PROBE_SCRIPT = r"""
set -eu
work=$1
mount -t tmpfs testbed "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay testbed -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
test -x "$work/root/usr/lib/systemd/systemd"
"""


class NspawnError(RuntimeError):
    """A container could not be booted or a command in it failed."""


# --- Can containers run here? -------------------------------------------------------------


@functools.cache
def unavailable_reason() -> str | None:
    """Why systemd-nspawn cannot boot a container on this machine, or None. Probed once."""
    for probe in (_need_root, _need_tools, _need_cap_sys_admin, _need_initial_user_namespace):
        reason = probe()
        if reason:
            return reason
    return _need_overlay() or _need_writable_cgroups() or _need_trial_mounts()


def _need_root() -> str | None:
    return None if os.geteuid() == 0 else "not root (systemd-nspawn needs root)"


def _need_tools() -> str | None:
    missing = [tool for tool in TOOLS if shutil.which(tool, path=CLEAN_ENV["PATH"]) is None]
    if not missing:
        return None
    hint = " (apt-get install systemd-container)" if "systemd-nspawn" in missing else ""
    return f"not installed: {', '.join(missing)}{hint}"


def _need_cap_sys_admin() -> str | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:") and int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1:
            return None
    return "no CAP_SYS_ADMIN (mounts and namespaces are refused)"


def _need_initial_user_namespace() -> str | None:
    """Root inside an unprivileged container is mapped: it cannot boot another systemd."""
    mapping = Path("/proc/self/uid_map").read_text().split()
    if mapping == ["0", "0", "4294967295"]:
        return None
    return f"an unprivileged container (user namespace, uid_map {' '.join(mapping)})"


def _need_overlay() -> str | None:
    filesystems = Path("/proc/filesystems").read_text().split()
    return None if "overlay" in filesystems else "no overlayfs in this kernel"


def _need_writable_cgroups() -> str | None:
    name = f"testbed-probe-{os.getpid()}"
    try:
        hierarchies = cgroup_hierarchies()
        for hierarchy in hierarchies:
            (hierarchy / name).mkdir()
            (hierarchy / name).rmdir()
    except (OSError, NspawnError) as exc:
        return f"cgroups not writable: {exc}"
    return None


def _need_trial_mounts() -> str | None:
    with _scratch_dir("probe") as work:
        result = _run_as_root(["unshare", "-m", "--propagation", "private"], PROBE_SCRIPT, [work])
    if result.returncode == 0:
        return None
    return f"a trial overlay mount failed: {result.stderr.strip() or result.returncode}"


# --- cgroups -------------------------------------------------------------------------------


def cgroup_hierarchies() -> list[Path]:
    """The hierarchies nspawn places a container in: the unified one, and on a v1 or hybrid
    host the named `systemd` one (plus `unified` when mounted)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2 only
        return [CGROUP_ROOT]
    found = [CGROUP_ROOT / h for h in ("systemd", "unified") if (CGROUP_ROOT / h).is_dir()]
    if not found or not (CGROUP_ROOT / "systemd" / "cgroup.procs").exists():
        raise NspawnError(f"no systemd cgroup hierarchy under {CGROUP_ROOT}")
    return found


def _make_cgroups(name: str) -> list[Path]:
    made = []
    for hierarchy in cgroup_hierarchies():
        (hierarchy / name).mkdir()
        made.append(hierarchy / name)
    return made


def _remove_cgroups(cgroups: Sequence[Path], timeout_s: float = 5.0) -> None:
    """rmdir depth first: the container's systemd made payload/ and supervisor/ inside.
    A cgroup whose last process is still exiting is busy for a moment: retry, bounded."""
    deadline = time.monotonic() + timeout_s
    for cgroup in cgroups:
        while cgroup.exists():
            try:
                for folder, _subfolders, _files in os.walk(cgroup, topdown=False):
                    os.rmdir(folder)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


# --- Running -------------------------------------------------------------------------------


def _run_as_root(
    wrapper: list[str],
    script: str,
    args: Sequence[object],
    timeout_s: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*wrapper, "sh", "-c", script, "sh", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env or CLEAN_ENV,
        check=False,
    )


def _package_index_env() -> dict[str, str]:
    """CLEAN_ENV, plus what pip may need to reach its index here: PIP_* settings, proxies and
    CA bundles (a CI machine may configure pip only through its environment)."""
    wanted = ("PIP_", "SSL_CERT_", "REQUESTS_CA_BUNDLE")
    passed = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(wanted) or name.lower() in ("http_proxy", "https_proxy", "no_proxy")
    }
    return {**CLEAN_ENV, **passed}


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A directory for mount points, in /tmp rather than under a caller's folder: overlayfs
    options are separated by commas and colons, so its paths must hold neither."""
    path = Path(f"/tmp/testbed-{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build_in_chroot(
    command: str, *, input_dir: Path, inside: str, outside: Path, timeout_s: float = 300.0
) -> None:
    """Run `command` (a shell line) chrooted into a throwaway overlay of the host's root, with
    `input_dir` at /tmp/testbed-input, and copy the directory `inside` out to `outside`. The
    host's file system is not written to (but `outside`): e.g. a venv built at /opt/NAME/venv,
    its final path in the container, from a copy of the source."""
    with _scratch_dir("chroot") as work:
        result = _run_as_root(
            ["unshare", "-m", "--propagation", "private"],
            CHROOT_SCRIPT,
            [work, input_dir, inside, outside, command],
            timeout_s=timeout_s,
            env=_package_index_env(),
        )
    if result.returncode != 0:
        raise NspawnError(f"chroot build failed ({result.returncode}):\n{result.stderr[-3000:]}")


def stage_file(stage: Path, path: str, text: str, mode: int = 0o644) -> Path:
    """Put `text` at `path` (absolute, as seen in the container) into a stage directory."""
    target = stage / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(mode)
    return target


def target_unit(wants: Sequence[str]) -> str:
    units = " ".join(wants)
    return (
        "[Unit]\n"
        "Description=testbed: what a test container boots into\n"
        "Requires=basic.target\n"
        f"Wants={units}\n"
        f"After=basic.target {units}\n"
        "AllowIsolate=yes\n"
    )


@dataclass
class Container:
    """A booted container: run commands in it, drive its systemd, read its journal."""

    name: str
    nspawn: subprocess.Popen[bytes]
    init_pid: int
    console_log: Path
    booted_in_s: float = 0.0

    def run(
        self,
        *argv: str,
        input: str | None = None,  # the name subprocess.run uses
        timeout_s: float = 20.0,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the container's namespaces (as its root) and wait, bounded."""
        environment = {**CLEAN_ENV, **(env or {})}
        result = subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=environment,
            check=False,
        )
        if check and result.returncode != 0:
            raise NspawnError(
                f"in container {self.name}: {' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
            )
        return result

    def systemctl(self, *args: str, check: bool = True, timeout_s: float = 30.0) -> str:
        return self.run("systemctl", "--no-pager", *args, check=check, timeout_s=timeout_s).stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """`systemctl show -p A,B unit` as a dict."""
        out = self.systemctl("show", "-p", ",".join(properties), unit)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *args: str) -> str:
        return self.run("journalctl", "--no-pager", "-q", *args).stdout

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        """Write a file in the container (its root writes into the overlay's tmpfs)."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"'
        self.run("sh", "-c", script, "sh", path, mode, input=text)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        wait_until_polling(predicate, timeout_s, what)

    def diagnostics(self, *units: str) -> str:
        """What to read when a test failed: `units`' status, failed units, the boot's journal
        and the nspawn console."""
        parts = []
        commands = [(f"status {u}", ["systemctl", "--no-pager", "status", u]) for u in units]
        commands += [
            ("failed units", ["systemctl", "--no-pager", "--failed"]),
            ("journal (last 150 lines)", ["journalctl", "--no-pager", "-b", "-n", "150"]),
        ]
        for title, argv in commands:
            try:
                result = self.run(*argv, check=False, timeout_s=10)
                parts.append(f"--- {title}:\n{result.stdout}{result.stderr}")
            except (OSError, subprocess.SubprocessError) as exc:
                parts.append(f"--- {title}: unavailable ({exc})")
        console = self.console_log.read_text(errors="replace").splitlines()[-30:]
        parts.append("--- nspawn console (last 30 lines):\n" + "\n".join(console))
        return "\n".join(parts)


def wait_until_polling(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Like waiting.wait_until, but at a pace fit for predicates that run a command."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def booted(
    stage: Path,
    *,
    wants: Sequence[str] = (),
    binds_ro: Sequence[tuple[Path, str]] = (),
    console_log: Path,
    boot_timeout_s: float = BOOT_TIMEOUT_S,
) -> Iterator[Container]:
    """Boot a container whose root is the host's, overlaid with `stage`, into testbed.target
    (which wants `wants`); `binds_ro`: (host path, container path) read-only bind mounts.
    On an exception in the body, its notes get the container's diagnostics. Always torn down.
    """
    reason = unavailable_reason()
    if reason:
        raise NspawnError(f"systemd-nspawn cannot boot a container here: {reason}")
    name = f"testbed-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    stage_file(stage, "/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    stage_file(stage, f"/etc/systemd/system/{TARGET}", target_unit(wants))
    NSPAWN_RUNTIME.mkdir(parents=True, exist_ok=True)  # the mount point; nspawn makes it too
    cgroups = _make_cgroups(name)
    try:
        with _scratch_dir("root") as work, console_log.open("wb") as console:
            nspawn = _start_nspawn(name, work, stage, binds_ro, cgroups, console)
            container = None
            try:
                container = _wait_for_boot(name, nspawn, console_log, boot_timeout_s)
                yield container
            except Exception as exc:
                if container is not None:
                    exc.add_note(container.diagnostics())
                else:
                    exc.add_note(console_log.read_text(errors="replace")[-3000:])
                raise
            finally:
                _power_off(nspawn, cgroups)
    finally:
        _remove_cgroups(cgroups)


def _start_nspawn(
    name: str,
    work: Path,
    stage: Path,
    binds_ro: Sequence[tuple[Path, str]],
    cgroups: Sequence[Path],
    console: IO[bytes],
) -> subprocess.Popen[bytes]:
    arguments = [
        "-q",
        "-M",
        name,
        "--register=no",
        "--keep-unit",
        "--private-network",
        "--tmpfs=/tmp",
        "--link-journal=no",
        "--console=read-only",
        *(f"--bind-ro={host}:{inside}" for host, inside in binds_ro),
        "-b",
        f"systemd.unit={TARGET}",
    ]
    env = {**CLEAN_ENV, "TESTBED_CGROUPS": " ".join(map(str, cgroups))}
    unshare = ["unshare", "-m", "--propagation", "private"]
    return subprocess.Popen(
        [*unshare, "sh", "-c", BOOT_SCRIPT, "sh", str(work), str(stage), *arguments],
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        env=env,
    )


def _wait_for_boot(
    name: str, nspawn: subprocess.Popen[bytes], console_log: Path, timeout_s: float
) -> Container:
    """The container's systemd is nspawn's child named `systemd`; booted = boot finished."""
    started = time.monotonic()
    init_pid = 0

    def init_started() -> bool:
        nonlocal init_pid
        if nspawn.poll() is not None:
            raise NspawnError(f"systemd-nspawn exited {nspawn.returncode} while booting")
        init_pid = _child_named(nspawn.pid, "systemd") or 0
        return init_pid != 0

    wait_until(init_started, timeout_s, "the container's systemd to start")
    container = Container(name, nspawn, init_pid, console_log)
    state = ""

    def boot_finished() -> bool:
        # `--wait` returns once the boot job is done: running, or degraded if a unit failed.
        # Until the container's systemd listens, it fails at once, saying nothing or
        # "offline" (its word for "no manager to ask"): retry.
        nonlocal state
        remaining = max(1.0, timeout_s - (time.monotonic() - started))
        result = container.run(
            "systemctl", "is-system-running", "--wait", check=False, timeout_s=remaining
        )
        state = result.stdout.strip()
        return state not in ("", "offline")

    wait_until_polling(boot_finished, timeout_s, f"container {name} to boot")
    if state not in ("running", "degraded"):
        raise NspawnError(f"container {name} did not boot: system state {state!r}")
    container.booted_in_s = time.monotonic() - started
    return container


def _child_named(parent: int, comm: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "PID (comm) STATE PPID ...": comm may hold spaces, so split after the last ')'.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and name == comm:
            return int(entry.name)
    return None


def _power_off(nspawn: subprocess.Popen[bytes], cgroups: Sequence[Path]) -> None:
    """SIGTERM to nspawn powers the container off. If that hangs (a systemd still booting has
    no handler for the signal yet and, as PID 1 of its namespace, ignores it), SIGKILL every
    process in the container's cgroups, which are ours by construction, and nspawn."""
    if nspawn.poll() is None:
        nspawn.send_signal(signal.SIGTERM)
    try:
        nspawn.wait(timeout=POWEROFF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for pid in _processes_in(cgroups):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        nspawn.kill()
        nspawn.wait(timeout=POWEROFF_TIMEOUT_S)


def _processes_in(cgroups: Sequence[Path]) -> set[int]:
    pids: set[int] = set()
    for cgroup in cgroups:
        for procs in cgroup.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(pid) for pid in procs.read_text().split())
    return pids
