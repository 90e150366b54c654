"""GEM in transformers: activation registry, config fields per model family, module swapping,
and fused MLPs (:func:`fuse_gem_mlps`).

After :func:`register` (run by ``import hf_gem``), every valid GEM-family name works wherever
transformers looks an activation up: ``name in ACT2FN``, ``ACT2FN[name]`` and
``get_activation(name)``, including parameterised names that were never listed
(``egem_n3_eps0.25``). The registry object is upgraded in place, because model files hold
their own reference to it (``from ...activations import ACT2FN``).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from transformers import activations as hf_activations
from transformers.pytorch_utils import Conv1D

from ..kernels import apply_bias_activation, apply_gated_activation
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


# ---------------------------------------------------------------------------------------------
# Fused MLPs: the GEM kernels also do the work that sits next to the activation.


def _parameters(activation: GemActivation) -> tuple:
    return activation.variant, activation.order, activation.epsilon


class FusedBiasGemMLP(nn.Module):
    """A GPT-2 MLP (c_fc, act, c_proj, dropout) whose c_fc bias is added inside the GEM kernel.

    It holds the original submodules under their original names: same parameters, same
    state dict keys.
    """

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.c_fc, self.act, self.c_proj, self.dropout = mlp.c_fc, mlp.act, mlp.c_proj, mlp.dropout

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        rows = hidden_states.reshape(-1, hidden_states.shape[-1])
        product = torch.mm(rows, self.c_fc.weight)  # a Conv1D weight is (in, out)
        product = product.view(*hidden_states.shape[:-1], product.shape[-1])
        activated = apply_bias_activation(product, self.c_fc.bias, *_parameters(self.act))
        return self.dropout(self.c_proj(activated))


class FusedGatedGemMLP(nn.Module):
    """A Llama-style MLP whose act(gate_proj(x)) * up_proj(x) runs as one GEM-GLU kernel."""

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.gate_proj, self.up_proj = mlp.gate_proj, mlp.up_proj
        self.down_proj, self.act_fn = mlp.down_proj, mlp.act_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(apply_gated_activation(gate, up, *_parameters(self.act_fn)))


def _fused_form(module: nn.Module):
    """The fused replacement for a GEM MLP of a known layout, or None."""
    if isinstance(module, (FusedBiasGemMLP, FusedGatedGemMLP)):
        return None
    children = dict(module.named_children())
    activation = children.get("act", children.get("act_fn"))
    if not isinstance(activation, GemActivation) or activation.spec.gated:
        return None
    if {"c_fc", "act", "c_proj", "dropout"} == set(children) and isinstance(
        children["c_fc"], Conv1D
    ):
        return FusedBiasGemMLP(module)
    if {"gate_proj", "up_proj", "down_proj", "act_fn"} == set(children):
        return FusedGatedGemMLP(module)
    return None


def fuse_gem_mlps(model: nn.Module) -> int:
    """Replace the GEM MLPs of a built model by fused ones; return how many were replaced.

    GPT-2 MLPs (``c_fc``, ``act``, ``c_proj``, ``dropout``) get the ``c_fc`` bias added
    inside the GEM kernel; Llama-style gated MLPs (``gate_proj``, ``up_proj``, ``down_proj``,
    ``act_fn``, as in Llama, Mistral and Qwen2) get act(gate) * up as one GEM-GLU kernel.
    Parameters and state dict keys do not change, so checkpoints load either way; a model
    rebuilt by ``from_pretrained`` is unfused until this is called again.
    """
    replaced = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            fused = _fused_form(child)
            if fused is not None:
                setattr(parent, child_name, fused)
                replaced += 1
    return replaced
