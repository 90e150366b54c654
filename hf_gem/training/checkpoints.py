"""Where checkpoints live, how the newest one is found, and what makes one usable.

A checkpoint is a folder ``<output_dir>/checkpoints/step_<k>`` holding what
``accelerator.save_state`` writes (model, optimizer, scheduler, random states) plus
``trainer_state.json``, the loop's own position (steps, examples consumed, tokens seen). That
file is written last, so a folder without it is an interrupted save and is never resumed from.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

STATE_FILE = "trainer_state.json"
CHECKPOINTS_DIR = "checkpoints"
STATE_KEYS = ("completed_steps", "samples_consumed", "items_seen", "elapsed_seconds")
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, corrupt or made for a different model."""


def checkpoint_dir(output_dir, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step}"


def list_checkpoints(output_dir) -> list:
    """Complete checkpoints under ``output_dir``, oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match[1]), path))
    return [path for _, path in sorted(found)]


def resolve_checkpoint(value: str, output_dir) -> Path:
    """Turn ``--resume_from_checkpoint`` (a folder or 'latest') into a checked folder."""
    if value == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise CheckpointError(
                f"--resume_from_checkpoint latest: no complete checkpoint under "
                f"{Path(output_dir) / CHECKPOINTS_DIR}. Train with --checkpointing_steps first, "
                "or leave the flag out to start from scratch."
            )
        path = found[-1]
    else:
        path = Path(value)
    read_state(path)
    return path


def read_state(path) -> dict:
    """The loop's state stored in a checkpoint, or a CheckpointError saying what is wrong."""
    path = Path(path)
    flag = "--resume_from_checkpoint"
    if not path.is_dir():
        raise CheckpointError(
            f"{flag} {path}: no such folder. Pass a folder such as "
            f"<output_dir>/{CHECKPOINTS_DIR}/step_100, or 'latest'."
        )
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(
            f"{flag} {path}: not a complete checkpoint ({STATE_FILE} is missing; the save was "
            "interrupted or this is not a checkpoint folder)."
        )
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{flag} {path}: {STATE_FILE} is corrupt ({error}).") from None
    missing = [key for key in STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"{flag} {path}: {STATE_FILE} is corrupt or from another program "
            f"(missing {', '.join(missing)})."
        )
    return state


def write_state(path, state: dict) -> None:
    """Write the loop's state; done last, it marks the checkpoint complete."""
    target = Path(path) / STATE_FILE
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True))
    partial.replace(target)


def remove_old_checkpoints(output_dir, keep: int | None) -> list:
    """Delete all but the newest ``keep`` complete checkpoints; return the deleted folders."""
    if not keep or keep < 1:
        return []
    found = list_checkpoints(output_dir)
    doomed = found[:-keep]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def drop_records_after(metrics_file, step: int) -> None:
    """Remove the records a stopped run wrote after the checkpoint it is resumed from."""
    metrics_file = Path(metrics_file)
    if not metrics_file.is_file():
        return
    kept = []
    for line in metrics_file.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short when the run was killed
        if record.get("step", 0) <= step:
            kept.append(line)
    metrics_file.write_text("".join(line + "\n" for line in kept))


def save_model_folder(accelerator, model, folder) -> None:
    """The final model: ``save_pretrained`` (safetensors), or model.safetensors for a plain
    module. Call it on every process (FSDP gathers the shards)."""
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)  # gathers shards under FSDP: every rank
    if hasattr(unwrapped, "save_pretrained"):
        unwrapped.save_pretrained(
            folder, is_main_process=accelerator.is_main_process,
            save_function=accelerator.save, state_dict=state_dict,
        )
    elif accelerator.is_main_process:
        from safetensors.torch import save_file

        Path(folder).mkdir(parents=True, exist_ok=True)
        tensors = {name: tensor.contiguous() for name, tensor in state_dict.items()}
        save_file(tensors, str(Path(folder) / "model.safetensors"))
