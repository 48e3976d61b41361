"""Per-subject series (`supervisor_watchdog_value{watchdog,subject}` and each kind's own gauge
such as `supervisor_tick_age_seconds`), made when Prometheus scrapes, from each watchdog's
last run.

A gauge set per subject per run would cost the event loop thousands of label look-ups a
second for 1,000 instruments, for a scrape every 15 s; here a run only keeps its verdicts (an
immutable snapshot) and the exporter's thread builds the samples when asked. The series are
always those of the last run: a subject no longer judged, or OK again under "not_ok", has
none, with nothing to forget.

Which subjects get series is each watchdog's `subject_metrics`: "all", "not_ok" (the subjects
that are not OK, the worst NOT_OK_SERIES_MAX of them), "none", or "auto" (the default), which
is "all" up to SUBJECT_SERIES_ALL_UP_TO subjects and "not_ok" above: 100,000 instruments as
100,000 series per gauge would make each scrape megabytes and seconds long.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisor.gauges import KindGauge
from supervisor.model import Status, Verdict, Verdicts

# "auto": series for every subject up to this many (a dashboard can show each instrument;
# Prometheus holds a few MB for them), only for those not OK above it.
SUBJECT_SERIES_ALL_UP_TO = 1000
NOT_OK_SERIES_MAX = 1000  # "not_ok" when everything fails at once: the worst, and counts
NOT_OK_WORST_FIRST = (Status.CRITICAL, Status.BREACH, Status.UNKNOWN, Status.WARN)
VALUE = ("supervisor_watchdog_value", "The measured value per subject, in the watchdog's unit.")


def with_series(verdicts: Verdicts, subject_metrics: str) -> list[Verdict]:
    """The verdicts whose subjects get series of their own under `subject_metrics`."""
    if subject_metrics == "auto":
        big = len(verdicts) > SUBJECT_SERIES_ALL_UP_TO
        subject_metrics = "not_ok" if big else "all"
    if subject_metrics == "all":
        return list(verdicts)
    chosen: list[Verdict] = []
    if subject_metrics == "not_ok":
        for status in NOT_OK_WORST_FIRST:
            chosen += verdicts.with_status(status, NOT_OK_SERIES_MAX - len(chosen))
    return chosen


class SubjectSeries(Collector):
    def __init__(self, kind_gauges: Mapping[str, KindGauge]) -> None:
        self.kind_gauges = dict(kind_gauges)
        # Watchdog -> (its kind, its last verdicts, its subject_metrics). Replaced whole by
        # the event loop, read by the exporter's thread through a copy.
        self._runs: dict[str, tuple[str, Verdicts, str]] = {}

    def observe(self, watchdog: str, kind: str, verdicts: Verdicts, subject_metrics: str) -> None:
        self._runs[watchdog] = (kind, verdicts, subject_metrics)

    def forget(self, watchdog: str) -> None:
        self._runs.pop(watchdog, None)

    def describe(self) -> Iterator[Metric]:
        """The families, without samples: what the registry checks names against."""
        yield GaugeMetricFamily(*VALUE, labels=["watchdog", "subject"])
        for spec in self.kind_gauges.values():
            yield GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)

    def collect(self) -> Iterator[Metric]:
        value = GaugeMetricFamily(*VALUE, labels=["watchdog", "subject"])
        # Per kind gauge: label values -> value (a gauge without a watchdog label, such as
        # lock TTLs by key, shows one sample per key whichever watchdog judged it).
        samples: dict[str, dict[tuple[str, ...], float]] = {k: {} for k in self.kind_gauges}
        for watchdog, (kind, verdicts, subject_metrics) in self._runs.copy().items():
            spec = self.kind_gauges.get(kind)
            for verdict in with_series(verdicts, subject_metrics):
                number = verdict.value if verdict.value is not None else math.nan
                value.add_metric([watchdog, verdict.subject], number)
                if spec is not None and spec.subject in (None, verdict.subject):
                    labels = [watchdog] if spec.watchdog_label else []
                    labels += [verdict.subject] if spec.subject_label else []
                    samples[kind][tuple(labels)] = number
        yield value
        for kind, spec in self.kind_gauges.items():
            family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            for label_values, number in samples[kind].items():
                family.add_metric(list(label_values), number)
            yield family
