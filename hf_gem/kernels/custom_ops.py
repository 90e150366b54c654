"""The fused GEM operations as ``torch.library`` operators in the ``hf_gem`` namespace.

    hf_gem::activation(x)                          y = act(x)
    hf_gem::activation_backward(g, x)              g * act'(x)
    hf_gem::bias_activation(x, bias)               y = act(x + bias)
    hf_gem::bias_activation_backward(g, x, bias)   g * act'(x + bias)
    hf_gem::gated_activation(gate, up)             y = act(gate) * up          (GEM-GLU)
    hf_gem::gated_activation_backward(g, gate, up) (g * up * act'(gate), g * act(gate))

Each takes ``variant, order, epsilon`` after its tensors. They are defined with
``torch.library.triton_op`` where available: under ``torch.compile`` an operator then
decomposes into its Triton kernel on CUDA (which Inductor launches itself) and into the plain
formulas on CPU (which Inductor fuses with the neighbouring operations), so a compiled model
has no graph break. Called eagerly, each device runs what ``backend.operator_path`` picks.

Autograd is registered for every operator: a forward saves its inputs only (x, or x and the
bias, or gate and up) and the backward recomputes the gate. The backward operators are
differentiable too, with the closed-form second derivative, so double backward works.
"""

from __future__ import annotations

import torch

from .. import eager
from . import backend, compiled, reference

NAMESPACE = "hf_gem"
_PARAMETERS = "str variant, int order, float epsilon"
SCHEMAS = {
    "activation": f"(Tensor x, {_PARAMETERS}) -> Tensor",
    "activation_backward": f"(Tensor grad_output, Tensor x, {_PARAMETERS}) -> Tensor",
    "bias_activation": f"(Tensor x, Tensor bias, {_PARAMETERS}) -> Tensor",
    "bias_activation_backward":
        f"(Tensor grad_output, Tensor x, Tensor bias, {_PARAMETERS}) -> Tensor",
    "gated_activation": f"(Tensor gate, Tensor up, {_PARAMETERS}) -> Tensor",
    "gated_activation_backward":
        f"(Tensor grad_output, Tensor gate, Tensor up, {_PARAMETERS}) -> (Tensor, Tensor)",
}

_triton_op = getattr(torch.library, "triton_op", None)
_wrap_triton = getattr(torch.library, "wrap_triton", None)


def _load_cuda_kernels():
    """The Triton launchers, or None without Triton (dispatch warns once a CUDA tensor comes)."""
    if _triton_op is None or _wrap_triton is None:
        return None
    try:
        from . import triton_kernels
    except Exception:  # Triton missing or broken; ``backend`` reports it when it matters
        return None
    return triton_kernels


_CUDA_KERNELS = _load_cuda_kernels()


def _main_tensor(kind: str, arguments) -> torch.Tensor:
    """The tensor whose size and device decide the path: x or gate, not grad_output."""
    return arguments[1] if kind.endswith("backward") else arguments[0]


def _traceable(kind: str):
    """The implementation seen by tracing: the kernel on CUDA, the formulas elsewhere."""
    formula = getattr(reference, kind)

    def implementation(*arguments):
        if _CUDA_KERNELS is not None and _main_tensor(kind, arguments).device.type == "cuda":
            return getattr(_CUDA_KERNELS, kind)(*arguments, wrap=_wrap_triton)
        return formula(*arguments)

    return implementation


# Outside tracing, the plain activation and its gradient use the core package's chunked,
# in-place evaluators, several times faster on a CPU than whole-tensor expressions.
_EAGER_FORMULAS = {"activation": eager.activation, "activation_backward": eager.gradient}


def _eager(kind: str):
    """The implementation of a real call: the path the backend picks, with fallback."""
    formula = _EAGER_FORMULAS.get(kind, getattr(reference, kind))

    def implementation(*arguments):
        tensor = _main_tensor(kind, arguments)
        path = backend.operator_path(tensor)
        if path == "triton":
            try:
                kernels = backend.triton_kernels(tensor.device.type)
                with backend.interpreter_quiet(tensor):
                    return getattr(kernels, kind)(*arguments)
            except Exception as error:  # a kernel that cannot compile or launch here
                backend.disable("triton", error)
        elif path == "compiled":
            try:
                return compiled.run(kind, *arguments)
            except Exception as error:  # no working compiler, or an Inductor failure
                backend.disable("compiled", error)
        return formula(*arguments)

    return implementation


def _define(kind: str):
    name = f"{NAMESPACE}::{kind}"
    traceable = _traceable(kind)
    if _CUDA_KERNELS is not None:
        operator = _triton_op(name, traceable, mutates_args=(), schema=SCHEMAS[kind])
    else:
        operator = torch.library.custom_op(name, traceable, mutates_args=(), schema=SCHEMAS[kind])
        operator.register_fake(traceable)
    operator.register_kernel(("cpu", "cuda"), _eager(kind))
    return operator


activation = _define("activation")
activation_backward = _define("activation_backward")
bias_activation = _define("bias_activation")
bias_activation_backward = _define("bias_activation_backward")
gated_activation = _define("gated_activation")
gated_activation_backward = _define("gated_activation_backward")


# ---------------------------------------------------------------------------------------------
# Autograd. ``ctx.parameters`` holds (variant, order, epsilon); only inputs are saved.


def _save_inputs(ctx, inputs, output):
    tensors = [value for value in inputs if isinstance(value, torch.Tensor)]
    ctx.save_for_backward(*tensors)
    ctx.parameters = tuple(inputs[len(tensors):])


def _activation_backward(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return activation_backward(grad_output, x, *ctx.parameters), None, None, None


def _activation_double_backward(ctx, grad_grad_x):
    grad_output, x = ctx.saved_tensors
    grad_grad_output = grad_x = None
    if ctx.needs_input_grad[0]:
        # d(g act'(x)) / dg = act'(x)
        grad_grad_output = activation_backward(grad_grad_x, x, *ctx.parameters)
    if ctx.needs_input_grad[1]:
        # d(g act'(x)) / dx = g act''(x)
        curvature = reference.second_derivative(x, *ctx.parameters)
        product = reference.widen(grad_grad_x) * reference.widen(grad_output) * curvature
        grad_x = product.to(x.dtype)
    return grad_grad_output, grad_x, None, None, None


def _sum_to_bias(grad: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Sum a gradient over every row into the bias's shape, accumulating in float32."""
    rows = grad.reshape(-1, bias.shape[-1])
    return rows.sum(dim=0, dtype=torch.float32).to(bias.dtype)


def _bias_backward(ctx, grad_output):
    x, bias = ctx.saved_tensors
    grad_total = bias_activation_backward(grad_output, x, bias, *ctx.parameters)
    grad_bias = _sum_to_bias(grad_total, bias) if ctx.needs_input_grad[1] else None
    return grad_total, grad_bias, None, None, None


def _bias_double_backward(ctx, grad_grad_total):
    grad_output, x, bias = ctx.saved_tensors
    grad_grad_output = grad_x = grad_bias = None
    if ctx.needs_input_grad[0]:
        grad_grad_output = bias_activation_backward(grad_grad_total, x, bias, *ctx.parameters)
    if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
        total = reference.widen(x) + reference.widen(bias)
        curvature = reference.second_derivative(total, *ctx.parameters)
        product = reference.widen(grad_grad_total) * reference.widen(grad_output) * curvature
        grad_x = product.to(x.dtype)
        grad_bias = _sum_to_bias(product, bias) if ctx.needs_input_grad[2] else None
    return grad_grad_output, grad_x, grad_bias, None, None, None


def _gated_backward(ctx, grad_output):
    gate, up = ctx.saved_tensors
    grad_gate, grad_up = gated_activation_backward(grad_output, gate, up, *ctx.parameters)
    return grad_gate, grad_up, None, None, None


def _gated_double_backward(ctx, grad_grad_gate, grad_grad_up):
    grad_output, gate, up = ctx.saved_tensors
    parameters = ctx.parameters
    wide_output, wide_up = reference.widen(grad_output), reference.widen(up)
    value = reference.activation_value(gate, *parameters)
    slope = reference.first_derivative(gate, *parameters)
    curvature = reference.second_derivative(gate, *parameters)
    gg_gate = _zero_if_none(grad_grad_gate, gate)
    gg_up = _zero_if_none(grad_grad_up, up)
    # grad_gate = g up act'(gate) and grad_up = g act(gate), differentiated in g, gate, up
    grad_grad_output = gg_gate * wide_up * slope + gg_up * value
    grad_gate = gg_gate * wide_output * wide_up * curvature + gg_up * wide_output * slope
    grad_up = gg_gate * wide_output * slope
    return (
        grad_grad_output.to(grad_output.dtype), grad_gate.to(gate.dtype), grad_up.to(up.dtype),
        None, None, None,
    )


def _zero_if_none(grad, like: torch.Tensor) -> torch.Tensor:
    if grad is None:
        return torch.zeros(like.shape, dtype=torch.float32, device=like.device)
    return reference.widen(grad)


activation.register_autograd(_activation_backward, setup_context=_save_inputs)
activation_backward.register_autograd(_activation_double_backward, setup_context=_save_inputs)
bias_activation.register_autograd(_bias_backward, setup_context=_save_inputs)
bias_activation_backward.register_autograd(_bias_double_backward, setup_context=_save_inputs)
gated_activation.register_autograd(_gated_backward, setup_context=_save_inputs)
gated_activation_backward.register_autograd(_gated_double_backward, setup_context=_save_inputs)
