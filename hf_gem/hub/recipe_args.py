"""The Hub flags every recipe shares: ``--push_to_hub --hub_model_id ORG/NAME``.

A recipe adds them with :func:`add_hub_arguments`, checks them with
:func:`check_hub_arguments` right after parsing (so a bad repository id or a missing token
stops the run before any training), and calls :func:`push_from_args` on the main process
once the model, tokenizer and metrics are saved (and not when the run was interrupted).
The token is never a flag: it comes from HF_TOKEN or the saved login, so it appears
neither in shell history nor in the saved arguments.
"""

from __future__ import annotations

import argparse
import logging

from huggingface_hub import constants

from .publish import PushError, PushResult, check_repo_id, check_revision, push, resolve_token

logger = logging.getLogger(__name__)


def add_hub_arguments(parser: argparse.ArgumentParser):
    """Add the Hub flags to ``parser``; return their argument group."""
    group = parser.add_argument_group("Hugging Face Hub")
    group.add_argument("--push_to_hub", action="store_true",
                       help="after training, publish output_dir with a model card "
                            "(needs HF_TOKEN or `hf auth login`)")
    group.add_argument("--hub_model_id", default=None, metavar="ORG/NAME",
                       help="the Hub repository to publish to")
    group.add_argument("--hub_private_repo", action="store_true",
                       help="create the repository as private (an existing one keeps its "
                            "visibility)")
    group.add_argument("--hub_revision", default=None, metavar="BRANCH",
                       help="publish to this branch instead of main (created if needed)")
    return group


def check_hub_arguments(args, parser: argparse.ArgumentParser | None = None) -> None:
    """Fail before training when ``--push_to_hub`` could not succeed.

    Checks the repository id, the revision, that HF_HUB_OFFLINE is not set and that a token
    exists (without sending it anywhere). With ``parser``, a problem is reported through ``parser.error`` (exit code 2);
    without, PushError is raised.
    """
    if not getattr(args, "push_to_hub", False):
        return
    try:
        if not getattr(args, "hub_model_id", None):
            raise PushError("--push_to_hub needs --hub_model_id ORG/NAME")
        check_repo_id(args.hub_model_id)
        check_revision(getattr(args, "hub_revision", None))
        if constants.HF_HUB_OFFLINE:
            raise PushError("HF_HUB_OFFLINE is set, so --push_to_hub could not publish after "
                            "training; unset it, or leave --push_to_hub out and publish later "
                            "with `hf-gem push`")
        resolve_token()
    except PushError as error:
        if parser is None:
            raise
        parser.error(str(error))


def push_from_args(args, output_dir, api=None,
                   parser: argparse.ArgumentParser | None = None) -> PushResult | None:
    """Publish ``output_dir`` if ``--push_to_hub`` was given; return the result or None.

    Call it on the main process only, once the run has finished and everything is saved.
    On failure it raises PushError, or, with ``parser``, exits with status 1; either way
    the message says where the trained model is and how to publish it later.
    """
    if not getattr(args, "push_to_hub", False):
        return None
    try:
        check_hub_arguments(args)
        result = push(output_dir, args.hub_model_id,
                      private=bool(getattr(args, "hub_private_repo", False)),
                      revision=getattr(args, "hub_revision", None), api=api)
    except PushError as error:
        message = (f"publishing failed: {error}. The trained model is saved in {output_dir}; "
                   f"publish it later with: hf-gem push {output_dir} --repo-id "
                   f"{args.hub_model_id}")
        if parser is None:
            raise PushError(message) from None
        parser.exit(1, f"{parser.prog}: error: {message}\n")
    logger.info("Published %s to %s (%d files)", output_dir, result.repo_id, len(result.files))
    return result
