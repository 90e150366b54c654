"""``hf-gem plot``: draw activations and their derivatives, e.g. ``hf-gem plot gelu gem_n2``."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", help="activation names (GEM family or built-in)")
    parser.add_argument("--output", default="activations.png", help="PNG file to write")
    parser.add_argument("--low", type=float, default=-3.0)
    parser.add_argument("--high", type=float, default=3.0)
    parser.add_argument("--points", type=int, default=601)


def run(args: argparse.Namespace) -> int:
    from .activation_plot import plot_activations

    try:
        plot_activations(args.names, args.output, args.low, args.high, args.points)
    except (KeyError, ValueError) as error:
        print(f"hf-gem plot: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.output}")
    return 0
