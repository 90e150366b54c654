"""The ``hf-gem`` command: one subcommand per task, e.g. ``hf-gem push OUTPUT_DIR ...``.

Each subcommand lives in its own module, which provides two functions:

    add_arguments(parser)   add the subcommand's arguments to its argparse parser
    run(args) -> int        do the work and return the exit code (0 on success)

and is listed once in :data:`SUBCOMMANDS` with its one-line help. A run imports only the
module of the subcommand it names, so one subcommand's dependencies never slow another;
keep heavy imports inside ``run``. To add a subcommand, write such a module and add a line
to the table.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module providing add_arguments and run, one-line help)
SUBCOMMANDS = {
    "push": ("hf_gem.hub.command", "publish a training output folder to the Hugging Face Hub"),
    "compare": ("hf_gem.study.command", "run a recipe over several activations and seeds"),
    "plot": ("hf_gem.study.plot_command", "plot activations and their derivatives"),
}


def build_parser(subcommands: dict | None = None) -> argparse.ArgumentParser:
    """The top-level parser, with one subparser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="hf-gem", description="Tools for models that use the GEM family of activations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in (subcommands or SUBCOMMANDS).items():
        module = importlib.import_module(module_name)
        subparser = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: list | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the subcommand, return its code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_only_requested(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args) or 0)


def _only_requested(argv: list) -> dict:
    """The registry narrowed to the subcommand named in ``argv``, when it names a known one.

    Building every subparser would import every subcommand's module; for a normal run only
    the requested one is needed. Help and unknown names still get the full list.
    """
    for word in argv:
        if not word.startswith("-"):
            if word in SUBCOMMANDS:
                return {word: SUBCOMMANDS[word]}
            break
    return SUBCOMMANDS


if __name__ == "__main__":
    sys.exit(main())
