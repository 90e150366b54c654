"""hf-gem: the GEM family of activations (GEM, E-GEM, SE-GEM) for the Hugging Face stack.

``import hf_gem`` registers every GEM-family name with transformers (``ACT2FN``) and timm
(``get_act_layer``), so a config can say ``hidden_act="gem_n2"``.
"""

from __future__ import annotations

from .modules import EGEM, GEM, SEGEM, GemActivation, GemGLU, GemLinear, activation_from_name
from .names import ActivationNameError, GemSpec, UnknownActivationError, is_gem_name, parse_name
from .ops import egem, gem, segem
from .integrations import register_all

__version__ = "0.1.0"

REGISTERED_WITH = register_all()


def patch_config(config, name: str):
    """Set a transformers config's activation field to ``name`` (see integrations.transformers)."""
    from .integrations.transformers import patch_config as _patch_config

    return _patch_config(config, name)


def fuse_gem_mlps(model) -> int:
    """Fuse the bias (GPT-2) or the gate (Llama-style) of GEM MLPs into the GEM kernel."""
    from .integrations.transformers import fuse_gem_mlps as _fuse_gem_mlps

    return _fuse_gem_mlps(model)


def swap_activations(model, name: str, targets=None) -> int:
    """Replace the activation modules of a built model (see integrations.transformers)."""
    from .integrations.transformers import swap_activations as _swap_activations

    return _swap_activations(model, name, targets)


__all__ = [
    "GEM", "EGEM", "SEGEM", "GemActivation", "GemGLU", "GemLinear", "fuse_gem_mlps", "GemSpec", "ActivationNameError", "UnknownActivationError",
    "activation_from_name", "gem", "egem", "segem", "is_gem_name", "parse_name",
    "patch_config", "swap_activations", "__version__",
]
