"""docs/benchmark.png from one run: left, fault -> kill latency per system (every trial a
dot over its box, log scale); right, one evaluation's cost against the instrument count
(log-log) with the targets. A panel whose section did not run says so."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.evaluation import TARGETS_S
from benchmarks.report import Figures, machine, median

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SETTINGS = (
    "this daemon: interval 1 s; Prometheus tuned: 1 s scrape and evaluation, for 0s,"
    " group_wait 0s;\nmonit: set daemon 1, check program; Prometheus defaults:"
    " 1 m scrape and evaluation, group_wait 30s"
)


def draw(figures: Figures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), width_ratios=(3, 2))
    latencies(left, figures.fault_to_kill_s)
    evaluation(right, figures.evaluation_s)
    fig.suptitle(f"trading-supervisor benchmark ({machine()})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latencies(ax: Axes, late: dict[str, list[float]]) -> None:
    ax.set_title("fault → kill received, past the 2 s threshold (the same fault)")
    if not late:
        not_run(ax, "anchors")
        return
    names = list(late)
    values = [[max(v, 1e-4) for v in late[name]] for name in names]
    ax.boxplot(values, whis=(0, 100), widths=0.5, showfliers=False)
    jitter = random.Random(0)
    for position, trial_values in enumerate(values, start=1):
        xs = [position + jitter.uniform(-0.15, 0.15) for _ in trial_values]
        ax.scatter(xs, trial_values, s=12, alpha=0.6, zorder=3)
        middle = median(trial_values)
        ax.annotate(
            f"median {label(middle)}\n{len(trial_values)} trials",
            (position + 0.28, middle),
            fontsize=8,
            va="center",
        )
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_xlabel(SETTINGS, fontsize=8)
    ax.set_ylabel("seconds (log scale)")
    ax.grid(axis="y", which="both", alpha=0.3)


def evaluation(ax: Axes, cost: dict[int, float]) -> None:
    ax.set_title("one evaluation (read and judge every instrument)")
    if not cost:
        not_run(ax, "evaluation")
        return
    counts = sorted(cost)
    ax.loglog(counts, [cost[c] * 1000 for c in counts], "o-", label="measured")
    for count, seconds in zip(counts, (cost[c] for c in counts), strict=True):
        ax.annotate(
            label(seconds),
            (count, seconds * 1000),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    targets = sorted(TARGETS_S)
    ax.loglog(targets, [TARGETS_S[c] * 1000 for c in targets], "rv", label="target (at most)")
    ax.set_xlabel("instruments")
    ax.set_ylabel("ms")
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="upper left")


def label(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def not_run(ax: Axes, section: str) -> None:
    ax.text(0.5, 0.5, f"not run (--only without {section})", ha="center", transform=ax.transAxes)
    ax.set_axis_off()
