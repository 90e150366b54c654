"""Memory-efficient autograd for the GEM family.

The forward pass saves only its input, exactly what ``F.gelu`` saves; the backward pass
recomputes the gate from that input (the derivative depends on F alone). Both run the
chunked, allocation-free evaluators of ``eager.py``. The backward is
itself an autograd Function whose backward uses the closed-form second derivative, so
double backward (gradient penalties, Hessian-vector products, ``gradgradcheck``) works and
stays finite at x = 0, where differentiating the gate's formula by autograd would give
0 * inf.
"""

from __future__ import annotations

import torch

from . import eager, functional


class GemActivationFunction(torch.autograd.Function):
    """y = act(x) for one member of the family; saves x alone."""

    @staticmethod
    def forward(x, variant: str, order: int, epsilon: float):
        return eager.activation(x, variant, order, epsilon)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, variant, order, epsilon = inputs
        ctx.save_for_backward(x)
        ctx.parameters = (variant, order, epsilon)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_input = GemGradientFunction.apply(grad_output, x, *ctx.parameters)
        return grad_input, None, None, None


class GemGradientFunction(torch.autograd.Function):
    """grad_input = grad_output * act'(x), differentiable in both of its tensor inputs."""

    @staticmethod
    def forward(grad_output, x, variant: str, order: int, epsilon: float):
        return eager.gradient(grad_output, x, variant, order, epsilon)

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_output, x, variant, order, epsilon = inputs
        ctx.save_for_backward(grad_output, x)
        ctx.parameters = (variant, order, epsilon)

    @staticmethod
    def backward(ctx, grad_grad_input):
        grad_output, x = ctx.saved_tensors
        variant, order, epsilon = ctx.parameters
        grad_grad_output = grad_x = None
        if ctx.needs_input_grad[0]:
            slope = functional.derivative(_widen(x), variant, order, epsilon)
            grad_grad_output = _multiply_in_compute_dtype(grad_grad_input, slope)
        if ctx.needs_input_grad[1]:
            curvature = functional.second_derivative(_widen(x), variant, order, epsilon)
            product = _widen(grad_grad_input) * _widen(grad_output) * curvature
            grad_x = product.to(x.dtype)
        return grad_grad_output, grad_x, None, None, None


def _widen(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32, so derivatives are not rounded before they are applied."""
    return tensor.to(functional.compute_dtype(tensor.dtype))


def _multiply_in_compute_dtype(tensor: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """tensor * factor computed in float32 for 16-bit tensors, returned in tensor's dtype."""
    return (_widen(tensor) * factor).to(tensor.dtype)


def gem_activation(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    """Apply the activation through the memory-efficient Function when autograd needs it."""
    if torch.is_grad_enabled() and x.requires_grad:
        return GemActivationFunction.apply(x, variant, order, epsilon)
    return eager.activation(x, variant, order, epsilon)
