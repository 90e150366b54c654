"""Load a published GEM checkpoint, by Hub repository id or from a folder, safetensors only.

``load_pretrained("ORG/NAME")`` works for both kinds of model hf-gem publishes: a
transformers model (its head chosen from ``config.json``'s ``architectures``) and an image
model in timm's Hub format. Only ``config.json``, tokenizer files and ``*.safetensors``
weights are fetched; pickled weights (``pytorch_model.bin`` and the like) are never
downloaded nor opened, and a repository that has no other weights is refused. Remote code
is never run: with hf-gem installed it is not needed.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import snapshot_download

from .run_folder import CONFIG_FILE, TOKENIZER_FILES, is_pickle_name

SAFE_PATTERNS = [CONFIG_FILE, "generation_config.json", "*.safetensors",
                 "model.safetensors.index.json", *TOKENIZER_FILES]


class LoadError(OSError):
    """A checkpoint that cannot be loaded safely; the message says why."""


def resolve_folder(name_or_path, revision: str | None = None, cache_dir=None) -> Path:
    """A local folder with the checkpoint's safe files: the folder itself, or a Hub snapshot.

    A repository id is looked up through huggingface_hub, so ``HF_HUB_OFFLINE=1`` reads the
    local Hub cache.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    try:
        return Path(snapshot_download(str(name_or_path), revision=revision, cache_dir=cache_dir,
                                      allow_patterns=SAFE_PATTERNS))
    except Exception as error:
        raise LoadError(f"could not find {name_or_path!r} as a folder, in the Hub cache or on "
                        f"the Hub: {type(error).__name__}: {error}") from None


def check_safe_weights(folder: Path, name) -> list:
    """The safetensors files in ``folder``; LoadError when it has none (pickles included)."""
    weights = sorted(path.name for path in folder.glob("*.safetensors"))
    if weights:
        return weights
    pickled = sorted(path.name for path in folder.iterdir() if is_pickle_name(path.name))
    found = ""
    if pickled:
        found = (f" It holds {', '.join(pickled)}: pickle files are refused, because loading "
                 "one can run arbitrary code.")
    raise LoadError(f"{name} has no safetensors weights (*.safetensors).{found}")


def load_pretrained(name_or_path, *, revision: str | None = None, cache_dir=None,
                    device=None, **kwargs):
    """Load a published GEM model; extra keyword arguments go to transformers' loader."""
    folder = resolve_folder(name_or_path, revision=revision, cache_dir=cache_dir)
    check_safe_weights(folder, name_or_path)
    if not (folder / CONFIG_FILE).is_file():
        raise LoadError(f"{name_or_path} has no {CONFIG_FILE}, so the model cannot be built")
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    if "model_type" not in config:
        from ..models import load_pretrained as load_image_model

        return load_image_model(folder, device=device).eval()

    model_class = transformers_class(config)
    model = model_class.from_pretrained(str(folder), use_safetensors=True, **kwargs)
    model.config._name_or_path = str(name_or_path)
    return model.to(device) if device is not None else model


def transformers_class(config: dict):
    """The standard transformers class named by ``architectures`` (remote-code names too)."""
    import transformers

    for name in config.get("architectures") or []:
        for candidate in (name, name[3:] if name.startswith("Gem") else None):
            model_class = getattr(transformers, candidate, None) if candidate else None
            if isinstance(model_class, type):
                return model_class
    return transformers.AutoModel
