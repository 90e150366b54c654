"""GEM in transformers: activation registry, config fields per model family, module swapping.

After :func:`register` (run by ``import hf_gem``), every valid GEM-family name works wherever
transformers looks an activation up: ``name in ACT2FN``, ``ACT2FN[name]`` and
``get_activation(name)``, including parameterised names that were never listed
(``egem_n3_eps0.25``). The registry object is upgraded in place, because model files hold
their own reference to it (``from ...activations import ACT2FN``).
"""

from __future__ import annotations

from typing import Iterable

from torch import nn
from transformers import activations as hf_activations

from ..modules import GemActivation, module_for_spec
from ..names import (
    EXAMPLE_NAMES,
    is_gem_name,
    looks_like_gem_name,
    parse_name,
    unknown_name_error,
)

# The names listed in ACT2FN, so that `list(ACT2FN)` shows the family; any other valid
# parameterised name also works without being listed.
LISTED_NAMES = EXAMPLE_NAMES


class GemAwareClassInstantier(hf_activations.ClassInstantier):
    """transformers' ACT2FN, extended with the GEM grammar and a helpful error."""

    def __contains__(self, key) -> bool:
        return super().__contains__(key) or is_gem_name(key)

    def __getitem__(self, key):
        if super().__contains__(key):
            return super().__getitem__(key)
        if looks_like_gem_name(key):
            return module_for_spec(parse_name(key))  # a bad N or epsilon raises ValueError
        raise unknown_name_error(key, other_names=self.builtin_names())

    def builtin_names(self) -> list:
        return [name for name in self.keys() if not is_gem_name(name)]


def register() -> None:
    """Teach transformers' activation registry the GEM grammar. Safe to call repeatedly."""
    registry = hf_activations.ACT2FN
    if not isinstance(registry, GemAwareClassInstantier):
        registry.__class__ = GemAwareClassInstantier
    for name in LISTED_NAMES:
        spec = parse_name(name)
        entry = (type(module_for_spec(spec)), _constructor_kwargs(spec))
        dict.__setitem__(registry, name, entry)
        hf_activations.ACT2CLS.setdefault(name, entry)


def _constructor_kwargs(spec) -> dict:
    if spec.variant == "gem":
        return {"order": spec.order}
    return {"order": spec.order, "epsilon": spec.epsilon}


def resolve(name: str) -> nn.Module:
    """The module transformers would build for ``name`` (GEM-family or built-in)."""
    register()
    return hf_activations.ACT2FN[name]


# ---------------------------------------------------------------------------------------------
# Which config field each model family reads its activation from.
# A dotted path descends into a sub-config (multimodal models keep the text model apart).

ACTIVATION_FIELDS = {
    "gpt2": ("activation_function",),
    "gpt_neo": ("activation_function",),
    "gptj": ("activation_function",),
    "bert": ("hidden_act",),
    "roberta": ("hidden_act",),
    "distilbert": ("activation",),
    "llama": ("hidden_act",),
    "mistral": ("hidden_act",),
    "mixtral": ("hidden_act",),
    "qwen2": ("hidden_act",),
    "qwen3": ("hidden_act",),
    "gemma": ("hidden_act",),
    "gemma2": ("hidden_activation",),
    "gemma3_text": ("hidden_activation",),
    "gemma3": ("text_config.hidden_activation",),
    "t5": ("dense_act_fn",),
    "vit": ("hidden_act",),
}


def activation_fields(config) -> tuple:
    """The config fields that hold the activation name for this model family."""
    model_type = getattr(config, "model_type", None)
    if model_type not in ACTIVATION_FIELDS:
        known = ", ".join(sorted(ACTIVATION_FIELDS))
        raise ValueError(
            f"hf_gem does not know which config field sets the activation of model type "
            f"{model_type!r}. Known model types: {known}. For another family, set its field "
            "yourself (e.g. config.hidden_act = 'gem_n2') or use hf_gem.swap_activations."
        )
    return ACTIVATION_FIELDS[model_type]


def _resolve_field(config, path: str):
    *parents, field = path.split(".")
    owner = config
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, field


def get_activation_name(config) -> str:
    """The activation name a config currently carries."""
    owner, field = _resolve_field(config, activation_fields(config)[0])
    return getattr(owner, field)


def patch_config(config, name: str):
    """Set the activation of a transformers config to ``name`` and return the config.

    The name is checked first (unknown names, bad N or epsilon raise before anything changes).
    """
    resolve(name)
    for path in activation_fields(config):
        owner, field = _resolve_field(config, path)
        setattr(owner, field, name)
    return config


# ---------------------------------------------------------------------------------------------
# Replacing the activations of a model that is already built.

_DEFAULT_TARGETS = (
    nn.ReLU, nn.GELU, nn.SiLU, nn.Mish, nn.ReLU6, nn.LeakyReLU, nn.ELU,
    hf_activations.GELUActivation, hf_activations.NewGELUActivation,
    hf_activations.FastGELUActivation, hf_activations.QuickGELUActivation,
    hf_activations.GELUTanh if hasattr(hf_activations, "GELUTanh") else nn.GELU,
    GemActivation,
)


def swap_activations(model: nn.Module, name: str, targets: Iterable[type] | None = None) -> int:
    """Replace activation modules of a built model with ``name``; return how many were replaced.

    For a transformers model, the modules replaced are those its config's current activation
    builds (so a BERT pooler's Tanh is left alone) and the config is updated to ``name``, so
    ``save_pretrained`` and ``from_pretrained`` rebuild the same model. For other models
    (timm, plain PyTorch) every module whose type is in ``targets`` is replaced; by default
    the ReLU and GELU families and GEM itself. Weights are not touched.
    """
    resolve(name)  # check the name before touching the model
    config = getattr(model, "config", None)
    known_family = getattr(config, "model_type", None) in ACTIVATION_FIELDS
    if targets is None and known_family:
        targets = (type(resolve(get_activation_name(config))),)
    target_types = tuple(targets) if targets is not None else _DEFAULT_TARGETS

    swapped = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, target_types):
                setattr(parent, child_name, resolve(name))
                swapped += 1
    if swapped == 0:
        names = ", ".join(t.__name__ for t in target_types)
        raise ValueError(f"swap_activations found no activation modules of type {names} to replace")
    if known_family:
        patch_config(config, name)
    return swapped
