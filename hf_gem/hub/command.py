"""``hf-gem push OUTPUT_DIR --repo-id ORG/NAME``: the command-line face of :func:`push`.

Exit codes: 0 when every file is uploaded (or, with ``--dry-run``, staged), 1 when the push
fails (the message says why), 2 for bad command-line usage.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dir", help="the folder a recipe wrote (model, tokenizer, "
                                           "training arguments, metrics.jsonl)")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME",
                        help="the Hub model repository to publish to (created if needed)")
    parser.add_argument("--private", action="store_true",
                        help="create the repository as private (an existing one keeps its "
                             "visibility)")
    parser.add_argument("--revision", default=None, metavar="BRANCH",
                        help="publish to this branch instead of main (created if needed)")
    parser.add_argument("--commit-message", default=None, metavar="TEXT",
                        help="the commit's first line")
    parser.add_argument("--license", default="apache-2.0", metavar="ID",
                        help="license id for the model card (default: apache-2.0)")
    parser.add_argument("--card-template", default=None, metavar="FILE",
                        help="a Jinja model card template to use instead of the project's")
    parser.add_argument("--dry-run", action="store_true",
                        help="send nothing: list the files and print the model card that "
                             "would be uploaded (no token needed)")
    parser.add_argument("--stage-dir", default=None, metavar="DIR",
                        help="keep the staged upload in DIR (new or empty), e.g. to load it "
                             "back before publishing")
    parser.epilog = ("The token comes from the HF_TOKEN environment variable or from "
                     "`hf auth login`; it is never a command-line argument.")


def run(args: argparse.Namespace) -> int:
    from .publish import PushError, describe, push

    try:
        result = push(
            args.output_dir, args.repo_id, private=args.private, revision=args.revision,
            commit_message=args.commit_message, dry_run=args.dry_run,
            stage_dir=args.stage_dir, license=args.license, card_template=args.card_template,
        )
    except PushError as error:
        print(f"hf-gem push: error: {error}", file=sys.stderr)
        return 1
    print(describe(result, show_card=args.dry_run))
    return 0
