"""Save and load a trained image model as a folder: ``model.safetensors`` plus ``config.json``.

The folder uses timm's Hub format (the one ``timm.models.push_to_hf_hub`` uploads), so
``timm.create_model("local-dir:<folder>", pretrained=True)`` loads it too, once ``hf_gem`` is
imported. ``config.json`` also names, at its top level, what a reader needs without timm::

    {"architecture": "cifar_resnet56", "activation": "segem_eps1e-4", "num_classes": 10,
     "in_chans": 3, "model_args": {...}, "pretrained_cfg": {"mean": ..., "std": ...}, ...}
"""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from timm.models import save_for_hf

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def model_activation(model: torch.nn.Module) -> str | None:
    """The activation name a model was built with by ``timm.create_model``, if it was a name."""
    activation = getattr(model, "_model_args", {}).get("act_layer")
    return activation if isinstance(activation, str) else None


def save_pretrained(
    model: torch.nn.Module,
    folder,
    activation: str | None = None,
    data_config: dict | None = None,
    extra_config: dict | None = None,
) -> Path:
    """Write ``model`` (built by ``timm.create_model``) to ``folder``; return the folder.

    ``activation`` defaults to the ``act_layer`` name the model was created with; it must be a
    name, because a class cannot be written to JSON. ``data_config`` records the input size,
    mean and std the weights were trained with (for example ``{"input_size": (1, 8, 8),
    "mean": (0.3,), "std": (0.4,)}``). ``extra_config`` adds top-level fields, such as the
    dataset name or ``label_names``.
    """
    if getattr(model, "pretrained_cfg", None) is None:
        raise ValueError("save_pretrained needs a model built by timm.create_model(name, ...)")
    activation = activation or model_activation(model)
    if activation is None:
        raise ValueError(
            "save_pretrained needs the activation's name: build the model with "
            "act_layer='<name>' or pass activation='<name>'"
        )
    # The top-level fields a reader without timm needs; timm itself reads model_args.
    root = dict(activation=activation, in_chans=model.in_chans)
    root.update(extra_config or {})
    folder = Path(folder)
    save_for_hf(
        model, folder, model_config=root, model_args=dict(act_layer=activation),
        safe_serialization=True, data_config=data_config,
    )
    return folder


def read_config(folder) -> dict:
    """The ``config.json`` of a saved folder, with a clear error when it is not one."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    missing = [path.name for path in (config_path, weights_path) if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a saved hf-gem image model: it lacks {', '.join(missing)} "
            f"(expected {CONFIG_NAME} and {WEIGHTS_NAME}, as written by save_pretrained)"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for field in ("architecture", "activation", "num_classes"):
        if field not in config:
            raise ValueError(f"{config_path} has no {field!r} field")
    return config


def load_pretrained(folder, device=None) -> torch.nn.Module:
    """Rebuild the model saved in ``folder`` and load its weights (every key must match)."""
    config = read_config(folder)
    architecture = config["architecture"]
    if not timm.is_model(architecture):
        raise ValueError(
            f"{folder}: model {architecture!r} is not registered with timm "
            "(import the package that defines it first)"
        )
    model_args = dict(config.get("model_args", {}))
    model_args.update(
        act_layer=config["activation"], num_classes=config["num_classes"],
        in_chans=config.get("in_chans", model_args.get("in_chans", 3)),
    )
    model = timm.create_model(architecture, pretrained_cfg_overlay=config.get("pretrained_cfg"),
                              **model_args)
    state_dict = load_file(str(Path(folder) / WEIGHTS_NAME), device="cpu")
    model.load_state_dict(state_dict, strict=True)
    return model.to(device) if device is not None else model
