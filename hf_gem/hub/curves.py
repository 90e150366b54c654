"""Training and validation curves from ``metrics.jsonl``: a summary table and a PNG plot.

A record is one JSON object per line, such as ``{"step": 100, "train_loss": 3.2}`` or
``{"step": 100, "val_loss": 3.4, "perplexity": 30.1}``. Records may carry different keys;
each curve uses the records that have its key. Results are the keys that name a loss,
a perplexity or an accuracy; counters such as the learning rate are not results.
"""

from __future__ import annotations

import math
from pathlib import Path

RESULT_WORDS = ("loss", "perplexity", "accuracy", "top1", "top5")
HIGHER_IS_BETTER_WORDS = ("accuracy", "top1", "top5")
X_AXIS_KEYS = ("step", "global_step", "epoch")


def is_result_key(key: str) -> bool:
    return any(word in key.lower() for word in RESULT_WORDS)


def higher_is_better(key: str) -> bool:
    return any(word in key.lower() for word in HIGHER_IS_BETTER_WORDS)


def x_axis_key(records: list) -> str | None:
    """The counter to plot against: the first of step, global_step, epoch that records use."""
    for key in X_AXIS_KEYS:
        if any(key in record for record in records):
            return key
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def result_series(records: list) -> dict:
    """{key: [(x, value), ...]} for every result key, in file order."""
    axis = x_axis_key(records)
    series = {}
    for index, record in enumerate(records):
        x = record.get(axis, index) if axis else index
        for key, value in record.items():
            if is_result_key(key) and _is_number(value):
                series.setdefault(key, []).append((x, float(value)))
    return series


def summarize(records: list) -> dict:
    """{key: {"final", "best", "final_at", "best_at"}} for every result key."""
    summary = {}
    for key, points in result_series(records).items():
        pick = max if higher_is_better(key) else min
        best_at, best = pick(points, key=lambda point: point[1])
        final_at, final = points[-1]
        summary[key] = {"final": final, "best": best, "final_at": final_at, "best_at": best_at}
    return summary


def plot_training_curves(records: list, path, title: str = "") -> Path | None:
    """Write a PNG of the loss curves (and, beside them, any other results); None if empty."""
    series = result_series(records)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display is needed, nor wanted, to write a file
    from matplotlib import pyplot

    losses = {key: points for key, points in series.items() if "loss" in key.lower()}
    others = {key: points for key, points in series.items() if key not in losses}
    panels = [group for group in (losses, others) if group]
    figure, axes = pyplot.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    x_label = x_axis_key(records) or "record"
    for axis, group in zip(axes[0], panels):
        for key, points in sorted(group.items()):
            xs, ys = zip(*points)
            axis.plot(xs, ys, marker="o" if len(points) < 30 else None, label=key)
        axis.set_xlabel(x_label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    axes[0][0].set_ylabel("loss" if losses else "value")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
    return path
