"""Results of a study: a Markdown table, a JSON file and a plot of the validation curves.

Per activation, over its seeds: the final value of the validation metric (mean and sample
standard deviation), the step where the seed-averaged curve is best, training throughput
(tokens or images per second) and peak memory.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..hub.curves import higher_is_better, result_series
from .runner import MARKER, PlannedRun, activation_parameters


def read_records(folder: Path) -> list:
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pick_metric(preferences, runs) -> str:
    """The first preferred metric key that the finished runs report."""
    present = set()
    for run in runs:
        present.update(result_series(read_records(run.folder)))
    for key in preferences:
        if key in present:
            return key
    raise ValueError(
        f"none of the metrics {', '.join(preferences)} is in the runs' metrics.jsonl "
        f"(found: {', '.join(sorted(present)) or 'nothing'}); choose one with --metric"
    )


def _throughput(records: list) -> tuple:
    """(label, median items per second) over the training records."""
    for key in ("tokens_per_second", "images_per_second", "samples_per_second"):
        values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        if values:
            return key.replace("_per_second", "/s"), statistics.median(values)
    return "items/s", float("nan")


def _mean_curve(curves: list) -> list:
    """Average several [(step, value)] curves at the steps they all share."""
    shared = set.intersection(*(set(step for step, _ in curve) for curve in curves))
    return [(step, statistics.fmean(dict(curve)[step] for curve in curves))
            for step in sorted(shared)]


def summarize_study(runs: list, metric: str) -> list:
    """One row per activation (in study order), from the runs that finished."""
    by_activation = {}
    for run in runs:
        if run.finished:
            by_activation.setdefault(run.activation, []).append(run)
    best = max if higher_is_better(metric) else min
    rows = []
    for activation, finished in by_activation.items():
        curves, finals, speeds, memory, speed_label = [], [], [], [], "items/s"
        for run in finished:
            records = read_records(run.folder)
            curve = result_series(records).get(metric, [])
            if curve:
                curves.append(curve)
                finals.append(curve[-1][1])
            speed_label, speed = _throughput(records)
            speeds.append(speed)
            marker = json.loads((run.folder / MARKER).read_text())
            memory.append(marker.get("peak_rss_mb", float("nan")))
        mean_curve = _mean_curve(curves) if curves else []
        order, epsilon = activation_parameters(activation)
        rows.append({
            "activation": activation, "N": order, "epsilon": epsilon, "seeds": len(finished),
            "metric": metric,
            "mean": statistics.fmean(finals) if finals else float("nan"),
            "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "best_step": best(mean_curve, key=lambda point: point[1])[0] if mean_curve else None,
            "speed_label": speed_label, "speed": statistics.fmean(speeds),
            "peak_rss_mb": max(memory), "curve": mean_curve,
        })
    return rows


def markdown_table(rows: list) -> str:
    if not rows:
        return "No run has finished yet.\n"
    metric, speed_label = rows[0]["metric"], rows[0]["speed_label"]
    lines = [
        f"| activation | N | epsilon | {metric} (mean ± std) | seeds | best step | "
        f"{speed_label} | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['activation']} | {row['N']} | {row['epsilon']} | "
            f"{row['mean']:.4f} ± {row['std']:.4f} | {row['seeds']} | {row['best_step']} | "
            f"{row['speed']:,.0f} | {row['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_validation_curves(rows: list, path) -> Path | None:
    """One line per activation: its seed-averaged validation metric against the step."""
    if not any(row["curve"] for row in rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(7, 4.5))
    for row in rows:
        if row["curve"]:
            steps, values = zip(*row["curve"])
            axis.plot(steps, values, marker="o", markersize=3, label=row["activation"])
    values = [value for row in rows for _, value in row["curve"]]
    if min(values) > 0 and max(values) / min(values) > 10:
        axis.set_yscale("log")  # a perplexity falls by orders of magnitude early on
    axis.set_xlabel("step")
    axis.set_ylabel(f"{rows[0]['metric']} (mean over seeds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path


def write_report(runs: list, study_dir, metric: str, title: str = "") -> dict:
    """Write results.md, results.json and validation_curves.png; return their paths."""
    study_dir = Path(study_dir)
    rows = summarize_study(runs, metric)
    table = markdown_table(rows)
    heading = f"# {title}\n\n" if title else ""
    (study_dir / "results.md").write_text(heading + table)
    plain_rows = [{key: value for key, value in row.items() if key != "curve"} for row in rows]
    (study_dir / "results.json").write_text(json.dumps(plain_rows, indent=2) + "\n")
    plot = plot_validation_curves(rows, study_dir / "validation_curves.png")
    return {"table": study_dir / "results.md", "json": study_dir / "results.json",
            "curves": plot, "rows": rows}


__all__ = ["PlannedRun", "markdown_table", "pick_metric", "summarize_study", "write_report"]
