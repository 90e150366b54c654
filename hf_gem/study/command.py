"""``hf-gem compare``: run a recipe over several activations and seeds, then report.

    hf-gem compare --recipe cnn --activations relu gelu gem segem_eps1e-4 --seeds 0 1 2 \\
        --study_dir runs/study-cnn -- --epochs 5

Arguments after ``--`` go to every run of the recipe unchanged.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

PAPER_SET = ["gelu_new", "relu", "gem", "gem_n2", "egem_eps1e-4", "segem_eps1e-4"]
# timm has no gelu_new (the tanh approximation); CNN studies compare with exact GELU.
CNN_SET = ["gelu"] + PAPER_SET[1:]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .runner import RECIPES

    parser.add_argument("--recipe", required=True, help=f"one of: {', '.join(RECIPES)}")
    parser.add_argument("--activations", nargs="+", default=None,
                        help=f"activation names (default: {' '.join(PAPER_SET)}; for the cnn "
                             "recipe gelu instead of gelu_new)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="seeds; every activation runs once per seed (default: 0)")
    parser.add_argument("--study_dir", default=None, help="default: runs/study-<recipe>")
    parser.add_argument("--metric", default=None,
                        help="metrics.jsonl key to compare (default: the recipe's main metric)")
    parser.add_argument("--launcher_args", default="",
                        help="arguments for accelerate launch, e.g. '--num_processes 8'")
    parser.add_argument("--dry_run", action="store_true", help="print the runs, start none")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER,
                        help="after --: arguments passed to every run of the recipe")


def run(args: argparse.Namespace) -> int:
    from . import report, runner
    from .activation_plot import plot_activations

    logging.getLogger("hf_gem").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    recipe_args = list(args.recipe_args)
    if recipe_args[:1] == ["--"]:
        recipe_args = recipe_args[1:]
    study_dir = Path(args.study_dir or f"runs/study-{args.recipe}")
    try:
        runner.recipe_script(args.recipe)
        default = CNN_SET if args.recipe == "cnn" else PAPER_SET
        names = runner.check_activations(args.activations or default, args.recipe)
    except runner.StudyError as error:
        print(f"hf-gem compare: {error}", file=sys.stderr)
        return 2
    runs = runner.run_study(args.recipe, names, args.seeds, study_dir, recipe_args,
                            shlex.split(args.launcher_args), dry_run=args.dry_run)
    if args.dry_run:
        return 0
    metric = args.metric or report.pick_metric(runner.RECIPES[args.recipe][1], runs)
    title = f"{args.recipe} study: {len(names)} activations, seeds {args.seeds}"
    written = report.write_report(runs, study_dir, metric, title)
    plot_activations(names, study_dir / "activations.png")
    print(report.markdown_table(written["rows"]))
    print(f"Results: {written['table']}, {written['json']}, {written['curves']}, "
          f"{study_dir / 'activations.png'}")
    return 0
