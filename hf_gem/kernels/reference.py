"""The fused forms written as plain tensor code: the kernels' contract in PyTorch.

Each function here computes one fused operation (activation, its backward, bias + activation,
the gated form act(a) * b) with the formulas of ``hf_gem.functional``, in float32 for 16-bit
inputs, and returns the result in the input's dtype. They serve three purposes:

* the CPU implementation of the custom operators when no faster path is chosen;
* the body that ``torch.compile`` turns into one fused loop per operation (``compiled.py``);
* what the operators decompose into when an outer ``torch.compile`` traces a CPU model, so
  Inductor can fuse the activation with its neighbours.

The Triton kernels in ``triton_kernels.py`` compute exactly these expressions.
"""

from __future__ import annotations

import torch

from .. import functional


def widen(tensor: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 -> float32; other dtypes unchanged."""
    return tensor.to(functional.compute_dtype(tensor.dtype))


def activation(x, variant: str, order: int, epsilon: float):
    """y = act(x)."""
    return functional.activation(widen(x), variant, order, epsilon).to(x.dtype)


def activation_backward(grad_output, x, variant: str, order: int, epsilon: float):
    """grad_x = grad_output * act'(x); the slope is recomputed from x, nothing else is saved."""
    slope = functional.derivative(widen(x), variant, order, epsilon)
    return (widen(grad_output) * slope).to(x.dtype)


def bias_activation(x, bias, variant: str, order: int, epsilon: float):
    """y = act(x + bias), bias broadcast along the last dimension; the sum is kept in float32."""
    total = widen(x) + widen(bias)
    return functional.activation(total, variant, order, epsilon).to(x.dtype)


def bias_activation_backward(grad_output, x, bias, variant: str, order: int, epsilon: float):
    """grad of the pre-activation z = x + bias: grad_output * act'(z), z recomputed."""
    total = widen(x) + widen(bias)
    slope = functional.derivative(total, variant, order, epsilon)
    return (widen(grad_output) * slope).to(x.dtype)


def gated_activation(gate, up, variant: str, order: int, epsilon: float):
    """y = act(gate) * up, the GLU form of Llama-style MLPs."""
    value = functional.activation(widen(gate), variant, order, epsilon) * widen(up)
    return value.to(gate.dtype)


def gated_activation_backward(grad_output, gate, up, variant: str, order: int, epsilon: float):
    """(grad_gate, grad_up) = (grad_output * up * act'(gate), grad_output * act(gate))."""
    wide_gate, wide_grad = widen(gate), widen(grad_output)
    slope = functional.derivative(wide_gate, variant, order, epsilon)
    value = functional.activation(wide_gate, variant, order, epsilon)
    grad_gate = wide_grad * widen(up) * slope
    return grad_gate.to(gate.dtype), (wide_grad * value).to(up.dtype)


# ---------------------------------------------------------------------------------------------
# Second-order terms, used only by double backward (gradient penalties, Hessian products).


def first_derivative(x, variant: str, order: int, epsilon: float):
    """act'(x) in the compute dtype."""
    return functional.derivative(widen(x), variant, order, epsilon)


def second_derivative(x, variant: str, order: int, epsilon: float):
    """act''(x) in the compute dtype, finite at x = 0 (closed form, not autograd of F)."""
    return functional.second_derivative(widen(x), variant, order, epsilon)


def activation_value(x, variant: str, order: int, epsilon: float):
    """act(x) in the compute dtype."""
    return functional.activation(widen(x), variant, order, epsilon)
