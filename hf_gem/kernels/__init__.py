"""Fused kernels for the GEM family and the dispatcher that picks a path per tensor.

``apply_activation`` is the entry point every module uses; ``apply_bias_activation`` and
``apply_gated_activation`` are the fused forms (act(x + bias), and GEM-GLU act(gate) * up).
``set_backend`` or the ``HF_GEM_BACKEND`` environment variable force a path.
"""

from .backend import BACKENDS, get_backend, set_backend
from .dispatch import apply_activation, apply_bias_activation, apply_gated_activation

__all__ = [
    "apply_activation", "apply_bias_activation", "apply_gated_activation",
    "set_backend", "get_backend", "BACKENDS",
]
