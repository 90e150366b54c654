"""``evaluate`` metric modules shipped with hf-gem, so that they load without a network.

Each metric lives in ``hf_gem/metrics/<name>/<name>.py``; ``evaluate.load`` takes the folder.
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent


def available_metrics() -> list:
    found = (path for path in METRICS_DIR.iterdir() if (path / f"{path.name}.py").is_file())
    return sorted(path.name for path in found)


def metric_path(name: str) -> str:
    """The folder ``evaluate.load`` needs for the shipped metric ``name``."""
    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        raise ValueError(f"no metric {name!r} ships with hf-gem; choose one of: "
                         f"{', '.join(available_metrics())}")
    return str(folder)


def load_metric(name: str, **kwargs):
    """``evaluate.load`` of a shipped metric, offline (e.g. ``load_metric("accuracy")``).

    The metric keeps its data in memory unless told otherwise: on disk, every process of a
    multi-process run would write to the same default cache file.
    """
    import evaluate

    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(metric_path(name), **kwargs)
