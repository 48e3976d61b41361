"""The daemon: schedule watchdogs, apply the policy, act, publish, and stop cleanly.

One APScheduler job per watchdog (max_instances=1, coalesce, explicit misfire grace) plus a
housekeeping job that sends WATCHDOG=1, refreshes actuator state and publishes the global
state and heartbeat. Signals only wake the main task, which acts: SIGHUP reloads, SIGTERM and
SIGINT stop in two phases (no new checks or actions; in-flight ones get a bounded grace; the
rest are cancelled and counted).

A watchdog whose verdicts carry a deadline (the moment an age crosses its next threshold) is
re-run at that moment rather than at its next interval, so detection lands within
milliseconds of the threshold.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from redis.exceptions import RedisError

from supervisor import __version__
from supervisor.actuators.base import ActionContext, Actuator
from supervisor.actuators.deadman import Deadman, build_deadmen
from supervisor.components import Components, build, close_resources, resources_for
from supervisor.config import Settings, load_config
from supervisor.constants import (
    HOUSEKEEPING_INTERVAL_S,
    MISFIRE_GRACE_S,
    SHUTDOWN_GRACE_S,
    WATCHDOG_LATE_FACTOR,
)
from supervisor.errors import ConfigError, first_line
from supervisor.latch import Latch, LatchStore, merge, reset_key, without_reset
from supervisor.model import Decision, Status, TradingState, Verdict, WatchdogRun
from supervisor.policy import PolicyState, action_failed, step
from supervisor.publish.audit import (
    AuditEvent,
    AuditKind,
    AuditOutcome,
    AuditTrail,
    action_event,
    decision_event,
)
from supervisor.publish.metrics import Metrics
from supervisor.publish.redis_state import StatePublisher, StateSnapshot
from supervisor.publish.systemd import Notifier
from supervisor.summary import Engagement, Summary, summarize
from supervisor.watchdogs.base import evaluate

log = logging.getLogger("supervisor")

HOUSEKEEPING_JOB = "_housekeeping"
MIN_RESCHEDULE_S = 0.01  # never re-arm a job closer than this: it must have finished first


@dataclass
class Runtime:
    """What the daemon has learned since it started."""

    policy: dict[str, PolicyState]
    runs: dict[str, WatchdogRun]
    engaged: dict[str, Latch]  # actuator -> what engaged it; only a manual reset removes it
    problems: dict[str, str]  # component -> what is wrong with it ("redis", "metrics"...)
    trading_since: float
    summary: Summary | None = None


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None = None,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.notifier = notifier or Notifier()
        client_name = f"trading-supervisor:{settings.supervisor.instance_id}"
        self.resources = resources_for(settings, client_name)
        self.redis = self.resources.redis
        self.components: Components = build(settings, self.resources)
        self.deadmen = build_deadmen(settings, self.resources)
        self.audit = AuditTrail(
            settings.supervisor.state_dir,
            self.redis,
            settings.postgres.dsn,
            settings.supervisor.namespace,
            settings.supervisor.instance_id,
            self.metrics.audit_outbox_events.set,
        )
        self.publisher = StatePublisher(self.redis, settings.supervisor.namespace)
        self.latches = LatchStore(
            settings.supervisor.state_dir, self.redis, settings.supervisor.namespace
        )
        now = clock()
        self.runtime = Runtime({}, {}, {}, {}, trading_since=now)
        self.started_at = now
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._beating: set[str] = set()  # deadmen with a heartbeat in flight
        self.scheduler: AsyncIOScheduler | None = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the two-phase shutdown will wait for."""
        task = asyncio.get_running_loop().create_task(work)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def _audit(self, event: AuditEvent) -> None:
        """Record without blocking the caller; the trail keeps the order and never raises."""
        self._spawn(self.audit.record(event))

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        # Signals are captured before anything starts: none may hit a default handler.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            await self._restore()
            self._start()
            try:
                await self._serve_signals(signals)
            finally:
                await self._shutdown()

    async def _restore(self) -> None:
        """Merge the engagements persisted in state_dir and Redis: the most restrictive wins."""
        from_file = self.latches.load_file()
        from_redis: dict[str, Latch] = {}
        resets: dict[str, float] = {}
        try:
            with anyio.fail_after(self.settings.redis.timeout_s * 2):
                from_redis, resets = await self.latches.load_redis()
        except Exception as exc:
            self._note_problem("redis", exc)
        restored = without_reset(merge(from_file, from_redis), resets)
        if not restored:
            return
        self.runtime.engaged.update(restored)
        summary = self._update_summary()
        sources = [
            name for name, found in (("state_dir", from_file), ("redis", from_redis)) if found
        ]
        log.warning(
            "restored trading_state=%s from %s: %s",
            summary.trading_state.name,
            " and ".join(sources),
            "; ".join(f"{n} ({latch.reason})" for n, latch in restored.items()),
        )
        self.notifier.status(f"{summary.trading_state.name} (restored): {summary.reason}")
        restored_reason = f"restored {summary.trading_state.name} from {' and '.join(sources)}"
        self._audit(
            AuditEvent.new(AuditKind.STATE, reason=restored_reason, outcome=AuditOutcome.RESTORED)
        )

    def _start(self) -> None:
        self._serve_metrics()
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        self.scheduler.add_listener(
            self._on_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._schedule_jobs()
        self.scheduler.start()
        log.info(
            "started version=%s instance=%s watchdogs=%d dry_run=%s redis=%s",
            __version__,
            self.settings.supervisor.instance_id,
            len(self.components.watchdogs),
            self.settings.supervisor.dry_run,
            self.settings.redis.display_url,
        )
        summary = self._update_summary()
        self.notifier.ready(summary.status_line())

    async def _serve_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                await self.reload()
                continue
            log.info("received %s: stopping", signal.Signals(signum).name)
            return

    async def _shutdown(self) -> None:
        self.notifier.stopping("stopping: finishing in-flight checks and actions")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        pending = {t for t in self.in_flight if not t.done()}
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stopped with %d in-flight checks/actions cancelled", len(pending))
            await asyncio.wait(pending, timeout=0.3)  # a cancelled record goes to the outbox
        await self.audit.close()
        await close_resources(self.resources)
        self.metrics.close()
        log.info("stopped")

    async def reload(self) -> None:
        """SIGHUP: apply a new config, or refuse it and keep running the old one."""
        self.notifier.notify("RELOADING=1")
        try:
            if self.config_path is None:
                raise ConfigError(["no config file to reload from"])
            new_settings = load_config(self.config_path)
            if (new_settings.redis, new_settings.postgres) != (
                self.settings.redis,
                self.settings.postgres,
            ):
                raise ConfigError(["[redis] and [postgres] connections change only on restart"])
            new_components = build(new_settings, self.resources)
        except ConfigError as exc:
            log.error("reload refused, the running config stays: %s", exc)
            self._audit(
                AuditEvent.new(AuditKind.CONFIG, reason=str(exc), outcome=AuditOutcome.REFUSED)
            )
            self.notifier.notify("READY=1")
            return
        self.settings, self.components = new_settings, new_components
        self.deadmen = build_deadmen(new_settings, self.resources)
        self._audit(
            AuditEvent.new(
                AuditKind.CONFIG, reason=f"reloaded {self.config_path}", outcome=AuditOutcome.OK
            )
        )
        self._schedule_jobs()
        log.info(
            "reloaded config from %s: %d watchdogs", self.config_path, len(new_components.watchdogs)
        )
        self.notifier.notify("READY=1")

    def _schedule_jobs(self) -> None:
        assert self.scheduler is not None
        self.scheduler.remove_all_jobs()
        first_run = datetime.now(UTC)
        for name, watchdog in self.components.watchdogs.items():
            self._add_job(self._run_watchdog, name, watchdog.config.interval_s, first_run, [name])
        self._add_job(self._housekeeping, HOUSEKEEPING_JOB, HOUSEKEEPING_INTERVAL_S, first_run, [])

    def _add_job(
        self,
        func: Callable[..., Any],
        job_id: str,
        interval_s: float,
        first: datetime,
        args: list[str],
    ) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(
            func,
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            args=args,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            next_run_time=first,
        )

    def _serve_metrics(self) -> None:
        if not self.settings.metrics.enabled:
            return
        host, port = self.settings.metrics.host_port
        try:
            self.metrics.serve(host, port)
        except OSError as exc:
            # Protection matters more than observability: keep running, say so everywhere.
            log.error("metrics: cannot listen on %s: %s", self.settings.metrics.listen, exc)
            self.runtime.problems["metrics"] = f"cannot listen on {self.settings.metrics.listen}"

    def _on_scheduler_event(self, event: Any) -> None:
        name = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(
            event.code, "max_instances"
        )
        self.metrics.scheduler_events.labels(event=name).inc()
        if event.job_id != HOUSEKEEPING_JOB or name == "error":
            log.warning("scheduler: job=%s %s", event.job_id, name)

    # --- one watchdog cycle ----------------------------------------------------------------

    async def _run_watchdog(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            await self._cycle(name)
        except Exception:  # the scheduler must never lose a job to a bug
            log.exception("watchdog=%s cycle failed", name)
        finally:
            self.in_flight.discard(task)

    async def _cycle(self, name: str) -> None:
        watchdog = self.components.watchdogs.get(name)
        if watchdog is None:  # removed by a reload while this run was queued
            return
        session_name = watchdog.config.session
        session = self.components.sessions.get(session_name) if session_name else None
        now = self.clock()
        started = time.perf_counter()
        verdicts = await evaluate(watchdog, session, now)
        duration_s = time.perf_counter() - started
        previous = self.runtime.policy.get(name, PolicyState())
        state, decisions = step(
            self.components.rules[name], previous, name, verdicts, now, lambda: uuid.uuid4().hex
        )
        self.runtime.policy[name] = state
        for decision in decisions:
            self._audit(decision_event(decision))
            self._start_actions(decision)
        run = WatchdogRun(
            name,
            state.status,
            verdicts,
            now,
            duration_s,
            state.streak,
            self._rearm(name, verdicts, now),
            state.reason,
        )
        self.runtime.runs[name] = run
        self._log_transition(previous, state, name)
        self.metrics.observe_run(watchdog.kind, run)
        await self._publish(self.publisher.publish_run(run))

    def _rearm(self, name: str, verdicts: list[Verdict], now: float) -> float | None:
        """Re-run at the earliest threshold deadline if it comes before the next interval."""
        job = self.scheduler.get_job(name) if self.scheduler else None
        if job is None or job.next_run_time is None:
            return None
        next_run: float = job.next_run_time.timestamp()
        deadlines = [v.deadline for v in verdicts if v.deadline is not None]
        if deadlines:
            deadline = max(min(deadlines), now + MIN_RESCHEDULE_S)
            if deadline < next_run:
                job.modify(next_run_time=datetime.fromtimestamp(deadline, UTC))
                next_run = deadline
        return next_run

    def _log_transition(self, before: PolicyState, after: PolicyState, name: str) -> None:
        if before.status is not after.status:
            level = logging.INFO if after.status is Status.OK else logging.WARNING
            log.log(
                level,
                "watchdog=%s status=%s (was %s): %s",
                name,
                after.status.name,
                before.status.name,
                after.reason,
            )
        if before.incident is None and after.incident is not None:
            log.warning("watchdog=%s incident=%s opened: %s", name, after.incident.id, after.reason)
        elif before.incident is not None and after.incident is None:
            log.info(
                "watchdog=%s incident=%s cleared; engaged actuators stay latched",
                name,
                before.incident.id,
            )

    # --- actions ---------------------------------------------------------------------------

    def _start_actions(self, decision: Decision) -> None:
        for actuator_name in decision.actuators:
            self._spawn(self._act(decision, self.components.actuators[actuator_name]))

    async def _act(self, decision: Decision, actuator: Actuator) -> None:
        verb = f"{actuator.name} ({actuator.level.name})"
        if self.settings.supervisor.dry_run:
            log.warning(
                "dry_run: would engage %s for watchdog=%s: %s",
                verb,
                decision.watchdog,
                decision.reason,
            )
            self.metrics.actions.labels(actuator.name, "dry_run").inc()
            self._audit(
                action_event(decision, actuator.name, AuditOutcome.DRY_RUN, detail={"would": verb})
            )
            return
        context = ActionContext(self.settings.supervisor.instance_id, self.clock())
        started = time.perf_counter()
        try:
            with anyio.fail_after(actuator.max_duration_s):
                outcome = await actuator.engage(decision, context)
        except Exception as exc:
            took_ms = (time.perf_counter() - started) * 1000
            self._audit(
                action_event(
                    decision,
                    actuator.name,
                    AuditOutcome.FAILED,
                    duration_ms=took_ms,
                    detail={"error": str(exc)},
                )
            )
            self._action_failed(decision, actuator, exc)
            return
        took_ms = (time.perf_counter() - started) * 1000
        self._audit(
            action_event(
                decision,
                actuator.name,
                AuditOutcome.OK if outcome.changed else AuditOutcome.UNCHANGED,
                duration_ms=took_ms,
                response_code=outcome.response_code,
                detail={"detail": outcome.detail},
            )
        )
        result = "engaged" if outcome.changed else "already_engaged"
        self.runtime.problems.pop(f"action {actuator.name}", None)
        self.metrics.actions.labels(actuator.name, result).inc()
        reason = f"{actuator.name} tripped by {decision.watchdog} — {decision.reason}"
        if self._engaged(actuator, reason, decision.watchdog):
            await self._publish_state()  # readers of {ns}:state see the trip now, not next cycle
        log.warning(
            "action actuator=%s outcome=%s watchdog=%s severity=%s incident=%s took_ms=%.1f "
            "since_decision_ms=%.1f reason=%s",
            actuator.name,
            result,
            decision.watchdog,
            decision.severity.name,
            decision.incident_id,
            took_ms,
            (self.clock() - decision.at) * 1000,
            decision.reason,
        )

    def _action_failed(self, decision: Decision, actuator: Actuator, exc: Exception) -> None:
        self.metrics.actions.labels(actuator.name, "failed").inc()
        detail = first_line(exc) if isinstance(exc, RedisError | OSError) else repr(exc)
        log.error(
            "action actuator=%s outcome=failed watchdog=%s incident=%s: %s (retrying next cycle)",
            actuator.name,
            decision.watchdog,
            decision.incident_id,
            detail,
        )
        self.runtime.problems[f"action {actuator.name}"] = "failing"
        state = self.runtime.policy.get(decision.watchdog)
        if state is not None:
            self.runtime.policy[decision.watchdog] = action_failed(state, decision.severity)
        self._escalate(decision, actuator, detail)

    def _escalate(self, decision: Decision, failed: Actuator, detail: str) -> None:
        """Engage the failed actuator's `on_failure` list (never one already in the chain)."""
        chain = (*decision.escalated_from, failed.name)
        targets = tuple(
            name for name in self.components.escalations.get(failed.name, ()) if name not in chain
        )
        if not targets:
            return
        log.error(
            "escalating: %s failed (%s): engaging %s", failed.name, detail, ", ".join(targets)
        )
        reason = f"escalated: {failed.name} failed; {decision.reason}"
        self._start_actions(
            replace(decision, actuators=targets, reason=reason, escalated_from=chain)
        )

    def _engaged(self, actuator: Actuator, reason: str, watchdog: str = "") -> bool:
        """Record and persist an engagement; True if it is news."""
        if actuator.name in self.runtime.engaged:
            return False
        self._latch(actuator.name, Latch(actuator.level, reason, self.clock(), watchdog))
        return True

    def _latch(self, name: str, latch: Latch) -> None:
        self.runtime.engaged[name] = latch
        try:
            self.latches.save_file(self.runtime.engaged)
        except OSError as exc:
            log.error("cannot persist engagements in %s: %s", self.latches.path, exc)
            self.runtime.problems["state_dir"] = f"cannot write: {exc.strerror}"
        self._update_summary()
        self._spawn(self._publish(self.latches.save_redis(name, latch)))

    # --- housekeeping ----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        now = self.clock()
        self.metrics.heartbeat.set(now)
        late = self._late_watchdogs(now)
        if late:
            log.error("not sending WATCHDOG=1: late watchdogs: %s", ", ".join(late))
        else:
            self.notifier.watchdog()
        await self._refresh_engaged()
        await self._publish_state()
        self._beat_deadmen(now)
        with anyio.move_on_after(2):
            await self.audit.replay()

    def _beat_deadmen(self, now: float) -> None:
        """Keep the venues' cancel-on-disconnect armed, only while trading is ACTIVE: once
        the state is more restrictive the beats stop and the venue cancels on its own."""
        summary = self.runtime.summary
        if summary is None or summary.trading_state is not TradingState.ACTIVE:
            return
        for deadman in self.deadmen.values():
            if deadman.name not in self._beating:
                self._beating.add(deadman.name)
                self._spawn(self._beat(deadman, now))

    async def _beat(self, deadman: Deadman, now: float) -> None:
        try:
            await deadman.heartbeat(now)
            self.metrics.actions.labels(deadman.name, "heartbeat").inc()
            self.runtime.problems.pop(f"deadman {deadman.name}", None)
        except Exception as exc:
            self.metrics.actions.labels(deadman.name, "failed").inc()
            if f"deadman {deadman.name}" not in self.runtime.problems:
                log.error("deadman=%s heartbeat failed: %s", deadman.name, exc)
            self.runtime.problems[f"deadman {deadman.name}"] = "heartbeat failing"
        finally:
            self._beating.discard(deadman.name)

    async def _publish_state(self) -> None:
        summary = self._update_summary()
        await self._publish(self.publisher.publish_state(self._snapshot(summary, self.clock())))

    def _late_watchdogs(self, now: float) -> list[str]:
        late = []
        for name, watchdog in self.components.watchdogs.items():
            run = self.runtime.runs.get(name)
            last = run.started_at + run.duration_s if run else self.started_at
            if (
                now - last
                > WATCHDOG_LATE_FACTOR * watchdog.config.interval_s + HOUSEKEEPING_INTERVAL_S
            ):
                late.append(name)
        return late

    async def _refresh_engaged(self) -> None:
        """Reconcile what is latched with Redis and with the actuators' real state."""
        try:
            with anyio.fail_after(self.settings.redis.timeout_s * 2):
                published, resets = await self.latches.load_redis()
        except Exception as exc:
            self._note_problem("redis", exc)
            return
        self._apply_resets(resets)
        for name, latch in published.items():
            if name not in self.runtime.engaged and latch.at > resets.get(name, float("-inf")):
                log.warning(
                    "actuator=%s engaged elsewhere (manual or another supervisor): %s",
                    name,
                    latch.reason,
                )
                self._latch(name, latch)
        for actuator in self.components.actuators.values():
            if actuator.readable:
                await self._check_real_state(actuator)
        await self._auto_reset()

    async def _auto_reset(self) -> None:
        """The one automatic release: a reduce_only breaker with `auto_reset_after`, once that
        long has passed and the watchdog that tripped it has been OK for `clear_after`."""
        now = self.clock()
        for name, latch in list(self.runtime.engaged.items()):
            actuator = self.components.actuators.get(name)
            after_s = getattr(getattr(actuator, "config", None), "auto_reset_after_s", None)
            policy = self.runtime.policy.get(latch.watchdog)
            cleared = policy is not None and policy.incident is None and policy.status is Status.OK
            if actuator is None or after_s is None or now - latch.at < after_s or not cleared:
                continue
            try:  # the reset marker first: the release must never look like a lost breaker
                await self.redis.hset(reset_key(self.settings.supervisor.namespace), name, f"{now}")
                await actuator.disengage(ActionContext(self.settings.supervisor.instance_id, now))
            except Exception as exc:
                self._note_problem("redis", exc)
                return
            del self.runtime.engaged[name]
            self.latches.save_file(self.runtime.engaged)
            reason = f"auto_reset_after: {latch.watchdog} OK for clear_after"
            self._audit(
                AuditEvent.new(
                    AuditKind.STATE, actuator=name, reason=reason, outcome=AuditOutcome.RELEASED
                )
            )
            log.warning(
                "audit auto_reset actuator=%s after %.0fs: watchdog=%s OK for clear_after",
                name,
                now - latch.at,
                latch.watchdog,
            )
            self._update_summary()

    def _apply_resets(self, resets: dict[str, float]) -> None:
        kept = without_reset(self.runtime.engaged, resets)
        for name in set(self.runtime.engaged) - set(kept):
            log.warning("actuator=%s released by a manual reset", name)
        if len(kept) != len(self.runtime.engaged):
            self.runtime.engaged = kept
            self.latches.save_file(kept)
            self._update_summary()

    async def _check_real_state(self, actuator: Actuator) -> None:
        own_timeout_s = getattr(getattr(actuator, "config", None), "timeout_s", 0.0)
        timeout_s = max(self.settings.redis.timeout_s, own_timeout_s)
        try:
            with anyio.fail_after(timeout_s):
                engaged = await actuator.is_engaged()
        except Exception as exc:
            where = "redis" if actuator.kind.startswith("redis") else f"actuator {actuator.name}"
            self._note_problem(where, exc)
            return
        self.runtime.problems.pop(f"actuator {actuator.name}", None)
        latch = self.runtime.engaged.get(actuator.name)
        if engaged and latch is None:
            self._engaged(actuator, f"{actuator.name} engaged (found in its store)")
        elif not engaged and latch is not None:
            # Latched but released without a recorded reset (flushed Redis, an unaudited
            # write): nothing automatic ever un-trips, so engage it again.
            log.error(
                "actuator=%s found released without a reset: engaging it again", actuator.name
            )
            decision = Decision(
                "latch", Status.BREACH, (actuator.name,), latch.reason, "latch", self.clock()
            )
            self._start_actions(decision)

    def _update_summary(self) -> Summary:
        watchdogs = {name: (s.status, s.reason) for name, s in self.runtime.policy.items()}
        engaged = {
            n: Engagement(latch.level, latch.reason) for n, latch in self.runtime.engaged.items()
        }
        summary = summarize(
            engaged, watchdogs, [f"{k}: {v}" for k, v in self.runtime.problems.items()]
        )
        previous = self.runtime.summary
        if previous is None or previous.trading_state != summary.trading_state:
            self.runtime.trading_since = self.clock()
            if previous is not None:
                log.warning(
                    "trading_state=%s (was %s): %s",
                    summary.trading_state.name,
                    previous.trading_state.name,
                    summary.reason,
                )
        self.runtime.summary = summary
        self.metrics.observe_state(
            summary.trading_state,
            summary.health,
            breaker=any(e.level == TradingState.REDUCE_ONLY for e in self.runtime.engaged.values()),
            kill=any(e.level >= TradingState.HALTED for e in self.runtime.engaged.values()),
        )
        self.notifier.status(summary.status_line())
        return summary

    def _snapshot(self, summary: Summary, now: float) -> StateSnapshot:
        levels = {e.level for e in self.runtime.engaged.values()}
        return StateSnapshot(
            trading_state=summary.trading_state.name,
            health=summary.health.name,
            breaker="TRIPPED" if TradingState.REDUCE_ONLY in levels else "OPEN",
            kill_switch="ENGAGED"
            if levels & {TradingState.HALTED, TradingState.FLATTEN}
            else "OFF",
            reason=summary.reason,
            since=self.runtime.trading_since,
            instance=self.settings.supervisor.instance_id,
            leader=self.settings.supervisor.instance_id,
            version=__version__,
            updated_at=now,
        )

    async def _publish(self, write: Any) -> None:
        """Publishing to Redis is best effort: an outage degrades health, never the loop."""
        try:
            with anyio.fail_after(self.settings.redis.timeout_s * 2):
                await write
        except Exception as exc:
            self._note_problem("redis", exc)
            return
        if self.runtime.problems.pop("redis", None) is not None:
            log.warning("redis: reachable again")

    def _note_problem(self, component: str, exc: BaseException) -> None:
        detail = first_line(exc) if not isinstance(exc, TimeoutError) else "timed out"
        if component not in self.runtime.problems:
            log.error("%s: %s (watchdogs that need it go UNKNOWN; retrying)", component, detail)
        self.runtime.problems[component] = detail
