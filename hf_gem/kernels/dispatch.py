"""Choose how an activation is computed for a given tensor.

Every module and integration calls :func:`apply_activation` (or the fused forms
:func:`apply_bias_activation` and :func:`apply_gated_activation`); this is the one place that
decides between the eager formulas, the ``torch.compile``-fused formulas and the Triton
kernels. ``backend.py`` describes the choices and how to force one.

* float64 and other non-kernel dtypes always use the eager formulas (double backward and
  ``gradgradcheck`` included). Integer and complex tensors raise ``TypeError``.
* Under ``torch.compile`` the custom operators are used, so the graph has no break: they
  decompose into the Triton kernel on CUDA and into fusable formulas on CPU.
* Eagerly, a plain activation that the backend would compute with the plain formulas goes
  through the core autograd Function (the cheapest call); everything else through the
  custom operators. The fused forms always use the operators, except under ``eager``.
"""

from __future__ import annotations

import torch

from ..autograd import gem_activation
from . import backend, custom_ops


def _check_floating(tensor: torch.Tensor, name: str) -> None:
    if not tensor.is_floating_point():
        raise TypeError(
            f"GEM activations need floating-point tensors, but {name} has dtype {tensor.dtype}; "
            f"convert it first (for example {name}.float())"
        )


def _use_operators(tensors) -> bool:
    """True when the custom operators should run: kernel dtypes and a non-eager choice."""
    if any(tensor.dtype not in backend.KERNEL_DTYPES for tensor in tensors):
        return False
    if torch.compiler.is_compiling():
        return backend.get_backend() != "eager"
    return backend.operator_path(tensors[0]) != "reference"


def apply_activation(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    """act(x) for the GEM-family member (variant, N, epsilon), differentiable in x."""
    _check_floating(x, "x")
    if _use_operators((x,)):
        return custom_ops.activation(x, variant, order, epsilon)
    return gem_activation(x, variant, order, epsilon)


def apply_bias_activation(
    x: torch.Tensor, bias: torch.Tensor, variant: str, order: int, epsilon: float
) -> torch.Tensor:
    """act(x + bias) in one pass, bias of shape (x.shape[-1],); the result has x's dtype.

    The sum is formed in float32 inside the kernel, so a Linear can run without its bias and
    leave the addition to the activation (one read and one write of the output saved).
    """
    _check_floating(x, "x")
    _check_floating(bias, "bias")
    if bias.dim() != 1 or x.dim() == 0 or bias.shape[0] != x.shape[-1]:
        expected = f"({x.shape[-1]},)" if x.dim() else "(n,) with x of at least one dimension"
        raise ValueError(
            f"bias of shape {tuple(bias.shape)} does not fit x of shape {tuple(x.shape)}: "
            f"the bias must have shape {expected}"
        )
    if bias.device != x.device:
        raise ValueError(f"bias is on {bias.device} but x is on {x.device}")
    if _kernel_dtypes(x, bias) and backend.get_backend() != "eager":
        # Every operator path saves only x and the bias for the backward.
        return custom_ops.bias_activation(x, bias, variant, order, epsilon)
    total = x + bias.to(x.dtype)
    return gem_activation(total, variant, order, epsilon)


def apply_gated_activation(
    gate: torch.Tensor, up: torch.Tensor, variant: str, order: int, epsilon: float
) -> torch.Tensor:
    """GEM-GLU: act(gate) * up in one pass, as in Llama-style gated MLPs."""
    _check_floating(gate, "gate")
    _check_floating(up, "up")
    if gate.shape != up.shape:
        raise ValueError(
            f"gate and up must have the same shape, got gate {tuple(gate.shape)} and "
            f"up {tuple(up.shape)}"
        )
    if up.device != gate.device:
        raise ValueError(f"up is on {up.device} but gate is on {gate.device}")
    if _kernel_dtypes(gate, up) and backend.get_backend() != "eager":
        return custom_ops.gated_activation(gate, up, variant, order, epsilon)
    return gem_activation(gate, variant, order, epsilon) * up


def _kernel_dtypes(*tensors) -> bool:
    return all(tensor.dtype in backend.KERNEL_DTYPES for tensor in tensors)
