"""The daemon's life: start, serve signals, reload, stop.

Signals only wake the main task, which acts: SIGHUP reloads (the new config applies whole or
is refused whole), SIGTERM and SIGINT stop in two phases (no new checks or actions; in-flight
ones get a bounded grace; the rest are cancelled and counted).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio

from supervisor import __version__
from supervisor.clock import SteadyClock
from supervisor.config.loading import load_config
from supervisor.config.settings import Settings
from supervisor.constants import SHUTDOWN_GRACE_S
from supervisor.daemon.acting import Acting
from supervisor.daemon.assembly import Assembly
from supervisor.daemon.auditing import Auditing
from supervisor.daemon.clock_reference import ClockReference
from supervisor.daemon.context import Context
from supervisor.daemon.cycle import Cycle
from supervisor.daemon.display import Display
from supervisor.daemon.engagements import Engagements
from supervisor.daemon.housekeeping import Housekeeping
from supervisor.daemon.lease_keeper import LeaseKeeper
from supervisor.daemon.problems import Source
from supervisor.daemon.publishing import Publishing
from supervisor.daemon.reconcile import Reconciler
from supervisor.daemon.repairs import Repairs
from supervisor.daemon.schedule import Schedule
from supervisor.daemon.steps import Pass, prepare
from supervisor.errors import ConfigError
from supervisor.kinds import kind_gauges
from supervisor.publish.audit import AuditEvent, AuditKind, AuditOutcome
from supervisor.publish.metrics import Metrics
from supervisor.publish.systemd import Notifier

log = logging.getLogger("supervisor")

CANCELLED_RECORD_GRACE_S = 0.3  # a cancelled audit record still reaches the outbox


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None = None,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_path = config_path
        metrics = metrics or Metrics(kind_gauges=kind_gauges())
        assembly = Assembly.build(settings, metrics.audit_outbox_events.set)
        notifier = notifier or Notifier()
        clock = clock or SteadyClock()
        self.context = Context(assembly, metrics, notifier, clock, monotonic)
        self.display = Display(self.context)
        # Redis TIME against the daemon's clock (a clock passed in by a test has no use for it)
        steady = clock if isinstance(clock, SteadyClock) else None
        self.clock_reference = ClockReference(self.context, steady) if steady else None
        self._prepare_metrics(assembly)
        self.schedule = Schedule(metrics)
        self._build_parts()

    def _build_parts(self) -> None:
        """The daemon's parts, each given the collaborators it uses and nothing else."""
        context, display = self.context, self.display
        self.publishing = publishing = Publishing(context, display)
        self.auditing = auditing = Auditing(context)
        self.engagements = engagements = Engagements(context, display, publishing)
        self.acting = Acting(context, engagements, display, publishing, auditing)
        repairs = Repairs(context, auditing)
        self.cycle = Cycle(context, self.acting, repairs, self.schedule, display, publishing)
        self.reconciler = Reconciler(
            context, engagements, self.acting, display, publishing, auditing
        )
        self.housekeeping = Housekeeping(context, self.reconciler, engagements, display, publishing)
        lease = context.assembly.lease
        self.lease = (
            LeaseKeeper(context, lease, self.take_over, display, publishing, auditing)
            if lease
            else None
        )

    async def run(self) -> None:
        # Signals are captured before anything starts: none may hit a default handler.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            await self.reconciler.restore()
            await self.housekeeping.check_state_dir()
            background = []
            if self.lease is not None:  # the role is known before the first cycle
                await self.lease.start()  # IdentityInUse: another process has this id
                background.append(self.lease.run())
            self.start()
            background.append(self.schedule.follow_clock_steps(self._replan))
            if self.clock_reference is not None:
                background.append(self.clock_reference.run())
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(work) for work in background]
            try:
                await self._serve_signals(signals)
            finally:
                for task in tasks:
                    task.cancel()
                await self.shutdown()

    async def take_over(self) -> None:
        """Just became the leader: learn what the old one latched, carry out what it ordered
        and did not see done, then engage what this instance held back as a follower and
        nobody has engaged; publish the state."""
        steps = Pass("take_over", self.context.metrics)  # each step fails alone
        adopted: set[str] = set()

        async def adopt() -> None:
            adopted.update(await self.acting.adopt_orders())

        await steps.step("reconcile", self.reconciler.refresh)
        await steps.step("adopt_orders", adopt)
        await steps.step("take_up_held", lambda: self.acting.take_up_held(adopted))
        await steps.step("publish_state", self.publishing.publish_state)

    def start(self) -> None:
        context = self.context
        self._serve_metrics()
        self.schedule.start(self._intervals(), self.cycle.run_job, self.housekeeping.run)
        settings = context.assembly.settings
        log.info(
            "started version=%s instance=%s watchdogs=%d dry_run=%s redis=%s",
            __version__,
            settings.supervisor.instance_id,
            len(context.assembly.watchdogs),
            settings.supervisor.dry_run,
            settings.redis.display_url,
        )
        context.notifier.ready(self.display.refresh().status_line())

    async def _serve_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                await self.reload()
                continue
            log.info("received %s: stopping", signal.Signals(signum).name)
            return

    async def shutdown(self) -> None:
        """Two phases: no new checks or actions; those in flight get SHUTDOWN_GRACE_S to
        finish; the rest are cancelled and counted."""
        context = self.context
        context.notifier.stopping("stopping: finishing in-flight checks and actions")
        self.schedule.pause()
        cancelled = await self._drain_in_flight()
        self.schedule.stop()
        await self.engagements.flush()  # the latches and orders on disk before the exit
        if self.lease is not None:
            await self.lease.release()
        await context.assembly.close()
        context.recorder.close()
        context.metrics.close()
        log.info("stopped (%d in-flight checks/actions cancelled)", cancelled)
        context.notifier.close()

    async def _drain_in_flight(self) -> int:
        pending = {task for task in self.context.tasks.in_flight if not task.done()}
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "%d in-flight checks/actions still running after %.1fs: cancelled",
                len(pending),
                SHUTDOWN_GRACE_S,
            )
            await asyncio.wait(pending, timeout=CANCELLED_RECORD_GRACE_S)
        return len(pending)

    async def reload(self) -> bool:
        """SIGHUP: apply the config file whole, or refuse it whole and keep the running one."""
        context = self.context
        context.notifier.notify("RELOADING=1")
        try:
            if self.config_path is None:
                raise ConfigError(["no config file to reload from"])
            assembly = context.assembly.reloaded(load_config(self.config_path))
        except ConfigError as exc:
            log.error("reload refused, the running config stays: %s", exc)
            self.auditing.record(
                AuditEvent.new(AuditKind.CONFIG, reason=str(exc), outcome=AuditOutcome.REFUSED)
            )
            context.notifier.notify("READY=1")
            return False
        self.apply(assembly)
        log.info("reloaded config from %s: %d watchdogs", self.config_path, len(assembly.watchdogs))
        self.auditing.record(
            AuditEvent.new(
                AuditKind.CONFIG, reason=f"reloaded {self.config_path}", outcome=AuditOutcome.OK
            )
        )
        context.notifier.notify("READY=1")
        return True

    def apply(self, assembly: Assembly) -> None:
        """Swap in a new assembly whole and forget the watchdogs it no longer has."""
        context = self.context
        context.assembly = assembly
        gone = context.runtime.forget_watchdogs_except(assembly.watchdogs)
        if gone:
            log.info("reload removed watchdogs: %s", ", ".join(gone))
            context.metrics.forget_watchdogs(gone)
            context.tasks.spawn(self.publishing.publish(assembly.publisher.forget(gone)))
        self._prepare_metrics(assembly)
        self._replan()
        self.display.refresh()

    def _prepare_metrics(self, assembly: Assembly) -> None:
        actuators = [*assembly.actuators, *assembly.deadmen]
        self.context.metrics.prepare(assembly.watchdogs, actuators)
        prepare(self.context.metrics)

    def _replan(self) -> None:
        self.schedule.replace_jobs(self._intervals(), self.cycle.run_job, self.housekeeping.run)

    def _intervals(self) -> dict[str, float]:
        watchdogs = self.context.assembly.watchdogs
        return {name: watchdog.config.interval_s for name, watchdog in watchdogs.items()}

    def _serve_metrics(self) -> None:
        settings = self.context.assembly.settings.metrics
        if not settings.enabled:
            return
        host, port = settings.host_port
        try:
            self.context.metrics.serve(host, port)
        except OSError as exc:
            # Protection matters more than observability: keep running, say so everywhere.
            log.error("metrics: cannot listen on %s: %s", settings.listen, exc)
            problem = f"cannot listen on {settings.listen}"
            self.context.runtime.problems.note(Source.METRICS, problem)
