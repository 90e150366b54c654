"""Publish a training output folder to the Hugging Face Hub.

:func:`push` stages the folder (see ``staging.py``), then, through ``huggingface_hub.HfApi``,
checks the token, creates the repository if needed and uploads every staged file in a
single commit, which the Hub applies completely or not at all. It then lists the files of
that commit and fails unless every staged file is there, so a push never reports success
for a partial upload. Every failure raises :class:`PushError` with a message that names the
problem and never contains the token.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import (
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .card import CardError
from .run_folder import RunFolderError
from .staging import StagedFolder, StagingError, stage

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".txt", ".py", ".jinja", ".yaml")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class PushError(RuntimeError):
    """Publishing failed; the message says why, and never contains the token."""


@dataclass
class PushResult:
    """What a push uploaded (or, for a dry run, would upload)."""

    repo_id: str
    revision: str
    dry_run: bool
    files: dict  # name -> size in bytes
    left_out: list  # (name, reason)
    card_text: str
    commit_url: str | None = None
    commit_oid: str | None = None
    stage_dir: str | None = None  # kept only when the caller chose the folder


def check_repo_id(repo_id) -> str:
    """Return ``repo_id`` if the Hub would accept it, else raise PushError saying why."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PushError(f"invalid repository id {repo_id!r}: {error}") from None
    if not repo_id:
        raise PushError("the repository id is empty; use the form ORG/NAME")
    return repo_id


def check_revision(revision) -> None:
    if revision is None:
        return
    if not isinstance(revision, str) or not _REVISION.match(revision) or ".." in revision:
        raise PushError(f"invalid revision {revision!r}: use a branch name such as 'main' or "
                        "'experiment-1' (letters, digits, '.', '_', '-', '/')")


def resolve_token(token: str | None = None) -> str:
    """The token to use: the argument, else HF_TOKEN or the saved login; PushError if none."""
    token = (token or get_token() or "").strip()
    if not token:
        raise PushError(
            "no Hugging Face token found: set the HF_TOKEN environment variable to a token "
            "with write access, or log in once with `hf auth login`"
        )
    return token


def push(output_dir, repo_id: str, *, private: bool = False, revision: str | None = None,
         commit_message: str | None = None, dry_run: bool = False, token: str | None = None,
         api=None, stage_dir=None, license: str = "apache-2.0", card_template=None
         ) -> PushResult:
    """Publish ``output_dir`` as the Hub model repository ``repo_id``.

    With ``dry_run=True`` nothing is sent and no token is needed: the result lists the files
    and the model card that would be uploaded. ``stage_dir`` keeps the staged folder there
    (it must be new or empty); otherwise it is a temporary folder, removed afterwards.
    ``api`` replaces ``huggingface_hub.HfApi()`` (for tests, or a custom endpoint).
    """
    check_repo_id(repo_id)
    check_revision(revision)
    with _staging_folder(stage_dir) as folder:
        try:
            staged = stage(output_dir, folder, repo_id, license=license,
                           card_template=card_template)
        except (RunFolderError, StagingError, CardError) as error:
            raise PushError(str(error)) from None
        result = PushResult(
            repo_id=repo_id, revision=revision or constants.DEFAULT_REVISION, dry_run=dry_run,
            files=staged.sizes(), left_out=list(staged.left_out), card_text=staged.card_text,
            stage_dir=str(folder) if stage_dir is not None else None,
        )
        if dry_run:
            return result
        token = resolve_token(token)
        _refuse_token_in_files(staged, token)
        _upload(api if api is not None else HfApi(), staged, result, private=private,
                commit_message=commit_message, token=token)
        return result


def _upload(api, staged: StagedFolder, result: PushResult, *, private, commit_message, token):
    repo_id, revision = result.repo_id, result.revision
    hub = _HubCalls(api, token, repo_id)
    user = hub.call("checking the token", "whoami", token=token)
    logger.info("Authenticated as %s", (user or {}).get("name", "an unnamed user"))
    # private=None leaves a new repository at the owner's default visibility.
    hub.call("creating the repository", "create_repo", repo_id=repo_id,
             private=True if private else None, exist_ok=True, repo_type="model", token=token)
    if revision != constants.DEFAULT_REVISION:
        hub.call(f"creating the branch {revision!r}", "create_branch", repo_id=repo_id,
                 branch=revision, exist_ok=True, token=token)

    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(staged.path / name))
                  for name in staged.files]
    message = commit_message or (f"Upload {staged.run.architecture} with "
                                 f"{staged.run.activation} (hf-gem)")
    logger.info("Uploading %d files to %s (revision %s)", len(operations), repo_id, revision)
    commit = hub.call("uploading the files (no commit was made, so the repository holds none "
                      "of them)", "create_commit", repo_id=repo_id, operations=operations,
                      commit_message=message, revision=revision, repo_type="model", token=token)
    result.commit_oid = getattr(commit, "oid", None)
    result.commit_url = getattr(commit, "commit_url", None)

    # The commit is atomic, but confirm it holds every file before reporting success.
    listed = hub.call("confirming the upload (it may be incomplete)", "list_repo_files",
                      repo_id=repo_id, revision=result.commit_oid or revision,
                      repo_type="model", token=token)
    missing = sorted(set(staged.files) - set(listed or []))
    if missing:
        raise PushError(f"the upload to {repo_id} is incomplete: the commit lacks "
                        f"{', '.join(missing)}. Run the push again.")
    logger.info("Published %s at %s", repo_id, result.commit_url or revision)


class _HubCalls:
    """Calls HfApi methods, turning any failure into a PushError without the token."""

    def __init__(self, api, token: str, repo_id: str):
        self.api, self.token, self.repo_id = api, token, repo_id

    def call(self, step: str, method: str, **kwargs):
        try:
            return getattr(self.api, method)(**kwargs)
        except Exception as error:  # every failure becomes one clear, token-free message
            endpoint = getattr(self.api, "endpoint", None) or constants.ENDPOINT
            message = explain_hub_error(error, self.repo_id, endpoint)
            raise PushError(redact(f"failed while {step}: {message}", self.token)) from None


def explain_hub_error(error: Exception, repo_id: str, endpoint: str = constants.ENDPOINT) -> str:
    """A plain-English account of a failed Hub call."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    detail = f"{type(error).__name__}: {error}".splitlines()[0]
    if isinstance(error, OfflineModeIsEnabled):
        return ("HF_HUB_OFFLINE is set, so nothing can be sent to the Hub; unset it to push, "
                "or use a dry run to see what would be uploaded")
    if status == 401:
        return ("the Hub rejected the token (HTTP 401): it is invalid or expired. Set a valid "
                "token in HF_TOKEN or log in again with `hf auth login`")
    if status == 403:
        return (f"the token may not write to {repo_id} (HTTP 403): use a token with write "
                "access to that user or organization")
    if isinstance(error, RevisionNotFoundError):
        return f"the revision does not exist in {repo_id} ({detail})"
    if isinstance(error, RepositoryNotFoundError) or status == 404:
        return f"{repo_id} was not found, or the token cannot see it ({detail})"
    if status is None and _is_connection_error(error):
        return (f"could not reach the Hugging Face Hub at {endpoint} ({detail}). "
                "Check the network connection and try again")
    return detail


def _is_connection_error(error: Exception) -> bool:
    """True for the errors that httpx, requests and the standard library raise when no
    connection can be made (matched by class name, so no HTTP library is imported here)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    transport = {"ConnectError", "ConnectTimeout", "TransportError", "TimeoutException",
                 "NetworkError", "ProxyError", "ConnectionError"}
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(names & transport)


def redact(text: str, token: str | None) -> str:
    """``text`` with every occurrence of the token replaced."""
    return text.replace(token, "<token>") if token else text


def _refuse_token_in_files(staged: StagedFolder, token: str) -> None:
    needle = token.encode()
    for name in staged.files:
        if name.endswith(TEXT_SUFFIXES) and needle in (staged.path / name).read_bytes():
            raise PushError(f"{name} contains the Hugging Face token; remove it from the "
                            "training output before publishing")


@contextlib.contextmanager
def _staging_folder(stage_dir):
    if stage_dir is not None:
        yield Path(stage_dir)
        return
    with tempfile.TemporaryDirectory(prefix="hf-gem-push-") as folder:
        yield Path(folder)


def describe(result: PushResult, show_card: bool = True) -> str:
    """The report the command line prints: files, left-out files, then the card."""
    verb = "Would upload" if result.dry_run else "Uploaded"
    lines = [f"{verb} {len(result.files)} files to {result.repo_id} "
             f"(revision {result.revision}):"]
    lines += [f"  {name:<40} {_size(size):>10}" for name, size in sorted(result.files.items())]
    if result.left_out:
        lines.append("Left out:")
        lines += [f"  {name:<40} {reason}" for name, reason in result.left_out]
    if result.commit_url:
        lines.append(f"Commit: {result.commit_url}")
    if result.stage_dir:
        lines.append(f"Staged folder: {result.stage_dir}")
    if show_card:
        lines += ["", "Model card (README.md):", "", result.card_text]
    return "\n".join(lines)


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)
