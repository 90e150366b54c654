"""Plot activations (GEM family and built-ins) and their derivatives on an interval.

GEM-family names are evaluated by the library's own modules; other names are whatever
transformers' ``ACT2FN`` builds for them (``gelu``, ``gelu_new``, ``relu``, ``silu``...).
Derivatives come from autograd through those same modules, so the plot shows exactly what
a model computes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..integrations.transformers import resolve


def activation_table(names, low: float = -3.0, high: float = 3.0, points: int = 601) -> dict:
    """{name: (x, value, derivative)} as float64 tensors on ``points`` evenly spaced inputs."""
    if not names:
        raise ValueError("give at least one activation name to plot")
    if not low < high or points < 2:
        raise ValueError(f"need low < high and at least 2 points, got [{low}, {high}], {points}")
    table = {}
    for name in names:
        module = resolve(name)  # raises a clear error for an unknown name
        x = torch.linspace(low, high, points, dtype=torch.float64, requires_grad=True)
        value = module(x)
        (slope,) = torch.autograd.grad(value.sum(), x)
        table[name] = (x.detach(), value.detach(), slope)
    return table


def plot_activations(names, path, low: float = -3.0, high: float = 3.0, points: int = 601):
    """Write a PNG with the activations (left) and their derivatives (right); return the figure.

    Each line is labelled with its activation name, so the data can be read back from the
    figure (``line.get_xdata()``, ``line.get_ydata()``).
    """
    import matplotlib

    matplotlib.use("Agg")  # writing a file needs no display
    from matplotlib import pyplot

    table = activation_table(names, low, high, points)
    figure, (value_axis, slope_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    for name, (x, value, slope) in table.items():
        value_axis.plot(x.numpy(), value.numpy(), label=name)
        slope_axis.plot(x.numpy(), slope.numpy(), label=name)
    for axis, title in ((value_axis, "activation"), (slope_axis, "derivative")):
        axis.set_title(title)
        axis.set_xlabel("x")
        axis.axhline(0.0, color="grey", linewidth=0.5)
        axis.axvline(0.0, color="grey", linewidth=0.5)
        axis.grid(alpha=0.3)
    value_axis.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return figure
