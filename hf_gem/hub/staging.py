"""Build the folder that a push uploads: exactly the files the published repository gets.

Staging reads a training output folder, links its publishable files into a new folder and
writes the generated ones beside them: the model card (``README.md``), the plot of the
training curves, the training arguments without secrets, and, for GEM transformers models,
the remote code and a ``config.json`` whose ``auto_map`` points at it. The staged folder
loads like the published repository, so it can be checked before anything leaves the
machine.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .card import check_card, render_card
from .curves import plot_training_curves
from .remote_code import REMOTE_CODE_DIR, REMOTE_CODE_FILES, auto_map_for
from .run_folder import (
    CONFIG_FILE, RunFolder, is_pickle_name, read_run_folder, without_secrets,
)

CARD_FILE = "README.md"
PLOT_FILE = "training_curves.png"
# Leading bytes of files written by pickle (protocol 2 and later) and by torch.save (zip).
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")


class StagingError(ValueError):
    """The staged folder would publish something it must not."""


@dataclass
class StagedFolder:
    """A staged upload: the folder, what it holds, and what was left out and why."""

    path: Path
    run: RunFolder
    card_text: str
    files: list = field(default_factory=list)  # relative names, sorted
    generated: list = field(default_factory=list)  # the subset written by staging
    has_remote_code: bool = False

    @property
    def left_out(self) -> list:
        return self.run.left_out

    def sizes(self) -> dict:
        return {name: (self.path / name).stat().st_size for name in self.files}


def stage(output_dir, stage_dir, repo_id: str, license: str = "apache-2.0",
          card_template=None) -> StagedFolder:
    """Stage ``output_dir`` for ``repo_id`` into the empty or new folder ``stage_dir``."""
    run = read_run_folder(output_dir)
    target = Path(stage_dir)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise StagingError(f"staging folder {target} is not empty; choose a new or empty one")

    generated = []
    for name in run.files:
        if name != CONFIG_FILE:
            _link_or_copy(run.path / name, target / name)

    auto_map = auto_map_for(run.model_type) if run.library == "transformers" else None
    has_remote_code = auto_map is not None and run.spec is not None
    config = dict(run.config)
    if has_remote_code:
        config["auto_map"] = {**config.get("auto_map", {}), **auto_map}
        for name in REMOTE_CODE_FILES:
            shutil.copyfile(REMOTE_CODE_DIR / name, target / name)
            generated.append(name)
        _write_json(target / CONFIG_FILE, config)
        generated.append(CONFIG_FILE)
    else:
        _link_or_copy(run.path / CONFIG_FILE, target / CONFIG_FILE)

    if run.training_args_file:
        _write_json(target / run.training_args_file, without_secrets(run.training_args))
        generated.append(run.training_args_file)

    title = f"{repo_id}: {run.activation}"
    plot = plot_training_curves(run.metrics, target / PLOT_FILE, title=title)
    if plot is not None:
        generated.append(PLOT_FILE)

    card = render_card(run, repo_id, license=license, has_remote_code=has_remote_code,
                       plot_file=PLOT_FILE if plot is not None else None, template=card_template)
    card_text = str(card)
    check_card(card_text)
    (target / CARD_FILE).write_text(card_text, encoding="utf-8")
    generated.append(CARD_FILE)

    files = sorted(path.name for path in target.iterdir())
    staged = StagedFolder(target, run, card_text, files, sorted(generated), has_remote_code)
    refuse_pickles(staged)
    return staged


def refuse_pickles(staged: StagedFolder) -> None:
    """Raise StagingError if any staged file is, by name or by content, a pickle."""
    for name in staged.files:
        path = staged.path / name
        if is_pickle_name(name):
            raise StagingError(f"{name} is a pickle file and must not be published")
        if name.endswith(".safetensors"):
            continue  # already parsed as safetensors when its parameters were counted
        with open(path, "rb") as handle:
            head = handle.read(4)
        if any(head.startswith(magic) for magic in PICKLE_MAGIC):
            raise StagingError(f"{name} holds pickled data and must not be published")


def _link_or_copy(source: Path, destination: Path) -> None:
    """Hard-link when possible (weights can be large), copy otherwise."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
