"""Run one recipe over a list of activations and seeds, each run in a folder of its own.

Every run gets the same recipe arguments; only ``--activation``, ``--seed`` and
``--output_dir`` differ. A run that finished (its final weights are saved and the recipe
exited cleanly) is recorded in ``study_run.json`` in its folder and skipped when the study
is started again; a run that was interrupted is resumed from its newest checkpoint. So an
interrupted study is finished by rerunning the same command.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..integrations.transformers import resolve
from ..names import format_epsilon, is_gem_name, parse_name

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"

# recipe name -> (script, the metric keys to report, in order of preference)
RECIPES = {
    "gpt2": ("gpt2_pretrain.py", ("perplexity", "val_perplexity", "val_loss")),
    "bert": ("bert_pretrain.py", ("val_loss", "eval_loss", "masked_accuracy")),
    "cnn": ("cnn_train.py", ("eval_accuracy", "accuracy", "eval_loss")),
}
MARKER = "study_run.json"
WEIGHT_SUFFIX = ".safetensors"


class StudyError(ValueError):
    """A study that cannot start: an empty or invalid activation list, an unknown recipe."""


@dataclass(frozen=True)
class PlannedRun:
    activation: str
    seed: int
    folder: Path

    @property
    def finished(self) -> bool:
        marker = self.folder / MARKER
        if not marker.is_file():
            return False
        try:
            record = json.loads(marker.read_text())
        except json.JSONDecodeError:
            return False
        has_weights = any(path.suffix == WEIGHT_SUFFIX for path in self.folder.iterdir())
        return record.get("returncode") == 0 and has_weights

    @property
    def interrupted(self) -> bool:
        checkpoints = self.folder / "checkpoints"
        return not self.finished and checkpoints.is_dir() and any(checkpoints.iterdir())


def recipe_script(recipe: str) -> Path:
    if recipe not in RECIPES:
        raise StudyError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    script = RECIPES_DIR / RECIPES[recipe][0]
    if not script.is_file():
        raise StudyError(f"the {recipe!r} recipe script is missing: {script}")
    return script


def _resolver(recipe: str):
    """How the recipe turns a name into a module: timm's factory for CNNs, else transformers'."""
    if recipe == "cnn":
        from ..integrations.timm import register
        from timm.layers import create_act_layer

        register()
        return create_act_layer
    return resolve


def check_activations(activations, recipe: str = "gpt2") -> list:
    """The list of names, each checked the way the recipe will resolve it, no duplicates."""
    names = [name.strip() for name in activations or [] if name and name.strip()]
    if not names:
        raise StudyError("the activation list is empty; give names such as: gelu_new relu gem_n2")
    problems, build = [], _resolver(recipe)
    for name in names:
        try:
            build(name)
        except (KeyError, ValueError) as error:
            problems.append(str(error))
    if problems:
        raise StudyError("invalid activation name(s):\n  " + "\n  ".join(problems))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StudyError(f"activation(s) listed twice: {', '.join(duplicates)}")
    return names


def folder_name(activation: str) -> str:
    """A file-system-safe folder name for an activation ('egem_eps1e-4' stays as it is)."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in activation)


def plan(study_dir, activations, seeds) -> list:
    """Every (activation, seed) run of the study, seed-major so each seed completes a row."""
    if not seeds:
        raise StudyError("give at least one seed")
    runs_dir = Path(study_dir) / "runs"
    return [PlannedRun(name, seed, runs_dir / folder_name(name) / f"seed_{seed}")
            for seed in seeds for name in activations]


def activation_parameters(name: str) -> tuple:
    """(N, epsilon) as text for the results table; '-' for activations outside the family."""
    if not is_gem_name(name):
        return "-", "-"
    spec = parse_name(name)
    epsilon = format_epsilon(spec.epsilon)
    return str(spec.order), epsilon


def launch_command(script: Path, run: PlannedRun, recipe_args, launcher_args) -> list:
    command = [sys.executable, "-m", "accelerate.commands.launch", *launcher_args, str(script),
               *recipe_args, "--activation", run.activation, "--seed", str(run.seed),
               "--output_dir", str(run.folder)]
    if run.interrupted:
        command += ["--resume_from_checkpoint", "latest"]
    return command


class StudyInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the study; the run in progress saved a checkpoint and stopped."""


class _ForwardSignals:
    """While a recipe runs in its own process group, pass SIGINT/SIGTERM on to that group.

    The recipe then stops as it does at a terminal's Ctrl-C (it saves a checkpoint) whether
    the signal came from a terminal or from a job scheduler that signals the study alone.
    """

    def __init__(self, process: subprocess.Popen):
        self.process, self.signal_name, self._previous = process, None, {}

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._forward)
        return self

    def _forward(self, number, frame):
        self.signal_name = signal.Signals(number).name
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False


def execute(run: PlannedRun, command: list, recipe_args=()) -> dict:
    """Run one recipe process; record exit code, wall time and peak memory in its folder."""
    run.folder.mkdir(parents=True, exist_ok=True)
    (run.folder / MARKER).unlink(missing_ok=True)
    started = time.perf_counter()
    with open(run.folder / "study_run.log", "a") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        with _ForwardSignals(process) as forwarder:
            _, status, usage = os.wait4(process.pid, 0)  # retried after a forwarded signal
    returncode = os.waitstatus_to_exitcode(status)
    if forwarder.signal_name:
        raise StudyInterrupted(
            f"{forwarder.signal_name} received: the {run.activation} run (seed {run.seed}) "
            "saved a checkpoint and stopped. Rerun the same command to resume the study."
        )
    record = {
        "activation": run.activation,
        "seed": run.seed,
        "recipe_args": list(recipe_args),
        "command": command,
        "returncode": returncode,
        "wall_seconds": round(time.perf_counter() - started, 2),
        # Linux reports the largest resident set among the recipe's processes, in KiB.
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if returncode == 0:
        (run.folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return record


def check_same_arguments(run: PlannedRun, recipe_args) -> None:
    """A finished run counts only if it was trained with the arguments asked for now."""
    recorded = json.loads((run.folder / MARKER).read_text()).get("recipe_args", [])
    if recorded != list(recipe_args):
        raise StudyError(
            f"{run.folder} finished with different recipe arguments ({shlex.join(recorded)!r}, "
            f"now {shlex.join(recipe_args)!r}); use another --study_dir, or delete that folder "
            "to train it again"
        )


def run_study(recipe: str, activations, seeds, study_dir, recipe_args=(), launcher_args=(),
              dry_run: bool = False) -> list:
    """Run every planned run that has not finished; return the list of planned runs."""
    script = recipe_script(recipe)
    names = check_activations(activations, recipe)
    runs = plan(study_dir, names, seeds)
    for run in runs:
        if run.finished:
            check_same_arguments(run, recipe_args)
    for index, run in enumerate(runs, start=1):
        label = f"[{index}/{len(runs)}] {run.activation}, seed {run.seed}"
        if run.finished:
            logger.info("%s: finished earlier, skipped", label)
            continue
        command = launch_command(script, run, list(recipe_args), list(launcher_args))
        if dry_run:
            logger.info("%s: would run %s", label, shlex.join(command))
            continue
        logger.info("%s: %s in %s", label, "resuming" if run.interrupted else "training",
                    run.folder)
        record = execute(run, command, recipe_args)
        if record["returncode"] != 0:
            raise RuntimeError(
                f"{label} failed with exit code {record['returncode']}; its log is "
                f"{run.folder / 'study_run.log'}. Rerun the same command to retry it: "
                "finished runs are skipped."
            )
        logger.info("%s: done in %.0f s", label, record["wall_seconds"])
    return runs
