"""Day 0: a replay from history Prometheus already has. Each watchdog of the candidate config
gets a PromQL expression (a prometheus_query watchdog its own `query`; any other one from
`--query NAME=PROMQL`), evaluated over the range at the watchdog's interval with
/api/v1/query_range; every series at every step is one subject's value, judged against the
candidate's thresholds and fed through the real policy, as `replay` does with a recording.

A watchdog with no expression, or of a kind not judged by warn/breach/critical, is named and
left out. A step where the expression has no series is UNKNOWN (as prometheus_query judges
an empty answer), NaN and infinities too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from urllib.parse import urlencode

import httpx

from supervisor.config.settings import Settings
from supervisor.errors import SourceError
from supervisor.model import Status, Verdict, Verdicts
from supervisor.recorder.replay import Candidate, Replay, Timeline, candidates
from supervisor.watchdogs.prometheus_query import render_labels
from supervisor.watchdogs.thresholds import judge_value

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series and query
Steps = dict[int, list[tuple[str, float]]]  # step time (ms) -> [(subject, value)]


def expression(candidate: Candidate, queries: Mapping[str, str]) -> str | None:
    if candidate.config.name in queries:
        return queries[candidate.config.name]
    query = getattr(candidate.config, "query", None)
    return query if candidate.entry.kind == "prometheus_query" and isinstance(query, str) else None


async def query_range(
    client: httpx.AsyncClient, url: str, query: str, start: float, end: float, step: float
) -> Steps:
    """Every series' samples, by step time, fetched in chunks of MAX_POINTS steps."""
    steps: dict[int, list[tuple[str, float]]] = defaultdict(list)
    chunk = step * (MAX_POINTS - 1)
    begin = start
    while begin <= end:
        stop = min(end, begin + chunk)
        params = {"query": query, "start": begin, "end": stop, "step": step}
        reply = await client.get(f"{url.rstrip('/')}/api/v1/query_range?{urlencode(params)}")
        for subject, at, value in _samples(reply, query):
            steps[round(at * 1000)].append((subject, value))
        begin = stop + step
    return dict(steps)


def _samples(reply: httpx.Response, query: str) -> list[tuple[str, float, float]]:
    try:
        body = reply.json()
    except ValueError:
        raise SourceError(f"HTTP {reply.status_code}: not JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise SourceError(f"HTTP {reply.status_code}: {error or 'not a Prometheus answer'}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise SourceError("not a range vector (matrix) answer")
    found = []
    for series in data.get("result") or []:
        if not isinstance(series, dict) or not isinstance(series.get("values"), list):
            continue
        labels = series.get("metric")
        subject = render_labels(labels) if isinstance(labels, dict) and labels else query
        for pair in series["values"]:
            try:
                at, raw = float(pair[0]), float(pair[1])
            except (TypeError, ValueError, IndexError):
                continue
            found.append((subject, at, raw))
    return found


def verdicts_at(candidate: Candidate, samples: list[tuple[str, float]]) -> Verdicts:
    name, thresholds = candidate.config.name, candidate.entry.thresholds
    assert thresholds is not None
    made = []
    for subject, value in samples:
        if not math.isfinite(value):
            made.append(Verdict(name, subject, Status.UNKNOWN, f"{subject} {value}", None))
            continue
        t = thresholds
        status = judge_value(value, t.warn, t.breach, t.critical, t.direction).status
        made.append(Verdict(name, subject, status, f"{subject} {value:g} {status.name}", value))
    return Verdicts.of(made)


async def replay_prometheus(
    settings: Settings, url: str, queries: Mapping[str, str], start: float, end: float
) -> Timeline:
    replay = Replay(None)
    timeline = replay.timeline
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        for name, candidate in candidates(settings).items():
            query = expression(candidate, queries)
            if query is None:
                timeline.unreplayable[name] = "no PromQL for it: pass --query NAME=PROMQL"
                continue
            if candidate.entry.thresholds is None:
                timeline.unreplayable[name] = "its kind is not judged by warn/breach/critical"
                continue
            step = candidate.config.interval_s
            try:
                steps = await query_range(client, url, query, start, end, step)
            except (httpx.HTTPError, SourceError) as exc:
                timeline.unreplayable[name] = f"prometheus: {exc}"
                continue
            _feed(replay, candidate, steps, start, end, step)
    return timeline


def _feed(
    replay: Replay, candidate: Candidate, steps: Steps, start: float, end: float, step: float
) -> None:
    name, session = candidate.config.name, candidate.session
    count = int((end - start) // step) + 1
    for index in range(count):
        at = start + index * step
        samples = steps.get(round(at * 1000), [])
        if session is not None and session.opened_at(at) is None:
            subjects = [subject for subject, _ in samples]
            verdicts = Verdicts.uniform(name, subjects, Status.OK, "session closed")
        else:
            verdicts = verdicts_at(candidate, samples)
        replay.step(name, at, verdicts, candidate.rules)
        replay.note_value(name, at, verdicts.max_value)
    replay.timeline.thresholds[name] = candidate.entry.thresholds
