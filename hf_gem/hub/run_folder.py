"""Read a training output folder and decide which of its files a published repository gets.

Two kinds of folder are understood:

- a transformers model saved with ``save_pretrained`` (``config.json`` names a
  ``model_type``), with its tokenizer when there is one;
- an image model saved by ``hf_gem.models.save_pretrained`` in timm's Hub format
  (``config.json`` names an ``architecture`` and an ``activation``).

Next to the model, a recipe writes its resolved arguments (JSON) and ``metrics.jsonl``.
Only files on an allow-list are published; everything else is reported as left out with the
reason, so nothing is uploaded by accident (optimizer states, pickled weights, logs).
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from ..names import GemSpec, is_gem_name, parse_name

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
# The first of these that exists is published as the run's training arguments.
TRAINING_ARGS_FILES = (
    "training_args.json", "run_config.json", "args.json", "run_args.json", "hparams.json",
)
WEIGHT_PATTERNS = ("*.safetensors", "model.safetensors.index.json")
MODEL_FILES = (CONFIG_FILE, "generation_config.json", "preprocessor_config.json")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "vocab.txt", "chat_template.jinja",
)
# Weight formats that unpickle arbitrary Python objects when loaded: never published.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.joblib")
# Argument names whose values must never leave the machine: "*token" and these words.
SECRET_MARKERS = ("secret", "password", "api_key", "apikey", "credential")


class RunFolderError(ValueError):
    """A training output folder that cannot be published; the message says why."""


@dataclass
class RunFolder:
    """What a training output folder holds, as far as publishing is concerned."""

    path: Path
    library: str  # "transformers" or "timm"
    config: dict
    architecture: str
    model_type: str
    activation: str | None
    weights: list = field(default_factory=list)
    files: list = field(default_factory=list)  # published as they are, relative names
    left_out: list = field(default_factory=list)  # (name, reason)
    training_args_file: str | None = None
    training_args: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    parameter_count: int = 0

    @property
    def spec(self) -> GemSpec | None:
        """The GEM-family member the model uses, or None for a baseline activation."""
        return parse_name(self.activation) if is_gem_name(self.activation) else None

    @property
    def has_tokenizer(self) -> bool:
        return any(name in TOKENIZER_FILES for name in self.files)


def read_run_folder(path) -> RunFolder:
    """Inspect ``path``; raise RunFolderError for a missing folder or one without a model."""
    folder = Path(path)
    if not folder.exists():
        raise RunFolderError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, not a training output folder")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise RunFolderError(
            f"{folder} has no {CONFIG_FILE}: it is not a saved model (save one with "
            "save_pretrained, or point at the output_dir a recipe wrote)"
        )
    config = _read_json(config_path)
    run = _describe_model(folder, config)
    _sort_files(run)
    if not run.weights:
        pickled = [name for name, _ in run.left_out if is_pickle_name(name)]
        hint = (
            f" It holds {', '.join(pickled)}, a pickle format that is never published: "
            "save the model again with safetensors (save_pretrained does by default)."
            if pickled else ""
        )
        raise RunFolderError(f"{folder} has no safetensors weights (*.safetensors).{hint}")
    run.parameter_count = _count_parameters(folder, run.weights)
    if run.training_args_file:
        run.training_args = _read_json(folder / run.training_args_file)
    if METRICS_FILE in run.files:
        run.metrics = read_metrics(folder / METRICS_FILE)
    return run


def _describe_model(folder: Path, config: dict) -> RunFolder:
    if "model_type" in config:
        from transformers import AutoConfig

        from ..integrations.transformers import ACTIVATION_FIELDS, get_activation_name

        model_type = config["model_type"]
        activation = None
        if model_type in ACTIVATION_FIELDS:
            # Loaded rather than read: config.json omits fields left at their defaults.
            try:
                loaded = AutoConfig.from_pretrained(str(folder))
            except Exception as error:
                raise RunFolderError(f"{folder / CONFIG_FILE} does not load as a transformers "
                                     f"config: {error}") from None
            activation = get_activation_name(loaded)
        architecture = (config.get("architectures") or [model_type])[0]
        return RunFolder(folder, "transformers", config, architecture, model_type, activation)
    if "architecture" in config and "activation" in config:
        architecture = config["architecture"]
        return RunFolder(folder, "timm", config, architecture, architecture, config["activation"])
    raise RunFolderError(
        f"{folder / CONFIG_FILE} is neither a transformers config (no 'model_type') nor an "
        "hf-gem image model config (no 'architecture' and 'activation')"
    )


def _sort_files(run: RunFolder) -> None:
    """Split the folder's entries into published files and left-out ones (with a reason)."""
    for entry in sorted(run.path.iterdir()):
        name = entry.name
        if entry.is_dir():
            run.left_out.append((name + "/", "folder: checkpoints and logs are not published"))
        elif is_pickle_name(name):
            run.left_out.append((name, "pickle format: only safetensors weights are published"))
        elif any(fnmatch.fnmatch(name, pattern) for pattern in WEIGHT_PATTERNS):
            run.files.append(name)
            if name.endswith(".safetensors"):
                run.weights.append(name)
        elif name in MODEL_FILES or name == METRICS_FILE:
            run.files.append(name)
        elif name in TOKENIZER_FILES and run.library == "transformers":
            run.files.append(name)
        elif name in TRAINING_ARGS_FILES and run.training_args_file is None:
            run.training_args_file = name  # staged separately, with secrets removed
        elif name == "README.md":
            run.left_out.append((name, "replaced by the generated model card"))
        else:
            run.left_out.append((name, "not part of a published model"))


def is_pickle_name(name: str) -> bool:
    return any(fnmatch.fnmatch(name.lower(), pattern) for pattern in PICKLE_PATTERNS)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} should hold a JSON object")
    return value


def _count_parameters(folder: Path, weights: list) -> int:
    total = 0
    for name in weights:
        try:
            with safe_open(str(folder / name), framework="pt") as handle:
                for key in handle.keys():
                    total += math.prod(handle.get_slice(key).get_shape())
        except Exception as error:  # a truncated or foreign file: say which one
            raise RunFolderError(f"{folder / name} is not a readable safetensors file: "
                                 f"{error}") from None
    return total


def read_metrics(path) -> list:
    """The records of a ``metrics.jsonl`` file, one dict per non-empty line."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise RunFolderError(f"{path}, line {number}, is not JSON: {error}") from None
        if not isinstance(record, dict):
            raise RunFolderError(f"{path}, line {number}, should hold a JSON object")
        records.append(record)
    return records


def without_secrets(arguments: dict) -> dict:
    """A copy of ``arguments`` without any field whose name suggests a credential."""
    clean = {}
    for key, value in arguments.items():
        lowered = str(key).lower()
        if lowered.endswith("token") or any(marker in lowered for marker in SECRET_MARKERS):
            continue
        clean[key] = without_secrets(value) if isinstance(value, dict) else value
    return clean
