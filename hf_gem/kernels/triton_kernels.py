"""Triton kernels for the GEM family: forward, backward, bias + activation and the gated form.

An elementwise activation is bound by memory traffic, so each kernel reads its inputs once
and writes its outputs once: the forward reads x and writes y, the backward reads
grad_output and x and writes grad_x, recomputing the gate from x (nothing but x is saved).
Arithmetic runs in float32 registers for every storage dtype (float32, float16, bfloat16),
with the overflow-safe forms of the gate F and its complement 1 - F from ``functional.py``.

Inputs are read as a (rows, columns) view: a contiguous tensor is one flat run of elements;
a view whose last dimension is contiguous but whose rows are spaced wider (for example the
two halves of ``x.chunk(2, dim=-1)``) is read in place through its row stride, without a
copy. Outputs are always written contiguous. Offsets are 64-bit, so tensors beyond 2^31
elements work.

This module imports Triton; ``custom_ops.py`` imports it only when Triton is installed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# 1024 elements per program (8 float32 or 16-bit values per thread at 4 warps): enough
# bytes in flight per program to saturate HBM on current NVIDIA parts for a streaming op.
BLOCK_SIZE = 1024
NUM_WARPS = 4


@triton.jit
def _gate_pair(magnitude, epsilon, ORDER: tl.constexpr):
    """F(t) and 1 - F(t) for t >= 0, both overflow-safe."""
    square = magnitude * magnitude
    power = square
    for _ in tl.static_range(ORDER - 1):
        # u = t^(2N) by repeated squaring-steps; it may overflow to +inf, which is fine below
        power = power * square
    # F = 1 / (1 + eps / u): 0 at u = 0 (eps / 0 = inf), 1 at u = +inf
    cdf = 1.0 / (1.0 + epsilon / power)
    # 1 - F = 1 / (1 + u / eps): exact where F is close to 1, never a subtraction
    survival = 1.0 / (1.0 + power / epsilon)
    return cdf, survival


@triton.jit
def _value_and_slope(x, epsilon, ORDER: tl.constexpr, SYMMETRIC: tl.constexpr):
    """act(x) and act'(x) from one evaluation of the gate; unused results compile away."""
    if SYMMETRIC:
        cdf, survival = _gate_pair(tl.abs(x), epsilon, ORDER)
        # halve x first: x (1 + F) could overflow near the largest float even though y fits
        half = 0.5 * x
        # SE-GEM = x/2 (1 + F(|x|)) for x >= 0 and x/2 (1 - F(|x|)) for x < 0
        value = tl.where(x >= 0, half * (1.0 + cdf), half * survival)
        # at x = -inf the complement is exactly 0 and -inf * 0 is NaN; the limit is 0
        value = tl.where(x == float("-inf"), 0.0, value)
        # SE-GEM' = 1/2 + F (1/2 + N (1 - F)) for x >= 0, and (1 - F)(1/2 - N F) for x < 0
        slope = tl.where(
            x >= 0, 0.5 + cdf * (0.5 + ORDER * survival), survival * (0.5 - ORDER * cdf)
        )
    else:
        # max(x, 0) written so that NaN stays NaN and -inf becomes 0
        positive = tl.where(x < 0, 0.0, x)
        cdf, survival = _gate_pair(positive, epsilon, ORDER)
        # E-GEM = x F(x) for x > 0, else 0 (GEM is E-GEM with eps = 1)
        value = positive * cdf
        # E-GEM' = F (1 + 2N (1 - F)) for x > 0, else 0
        slope = cdf * (1.0 + (2 * ORDER) * survival)
    return value, slope


@triton.jit
def _block_offsets(n_elements, BLOCK_SIZE: tl.constexpr):
    """Logical element indices of this program, 64-bit, and the in-range mask."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    return offsets, offsets < n_elements


@triton.jit
def _memory_offsets(offsets, n_cols, row_stride, FLAT: tl.constexpr):
    """Where logical element i of a (rows, n_cols) view with this row stride lives."""
    memory = offsets
    if not FLAT:
        # element (row, column) sits at row * row_stride + column
        memory = (offsets // n_cols) * row_stride + offsets % n_cols
    return memory


@triton.jit
def activation_forward_kernel(
    x_ptr, y_ptr, n_elements, n_cols, x_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    x_offsets = _memory_offsets(offsets, n_cols, x_row_stride, FLAT)
    x = tl.load(x_ptr + x_offsets, mask=mask).to(tl.float32)
    # y = act(x), computed in float32 and rounded once to the output dtype
    value, _ = _value_and_slope(x, epsilon, ORDER, SYMMETRIC)
    tl.store(y_ptr + offsets, value.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def activation_backward_kernel(
    grad_output_ptr, x_ptr, grad_x_ptr, n_elements, n_cols, x_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    x_offsets = _memory_offsets(offsets, n_cols, x_row_stride, FLAT)
    x = tl.load(x_ptr + x_offsets, mask=mask).to(tl.float32)
    grad_output = tl.load(grad_output_ptr + offsets, mask=mask).to(tl.float32)
    # recompute the gate from the saved input: grad_x = grad_output * act'(x)
    _, slope = _value_and_slope(x, epsilon, ORDER, SYMMETRIC)
    grad_x = grad_output * slope
    tl.store(grad_x_ptr + offsets, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)


@triton.jit
def bias_forward_kernel(
    x_ptr, bias_ptr, y_ptr, n_elements, n_cols, x_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    x_offsets = _memory_offsets(offsets, n_cols, x_row_stride, FLAT)
    x = tl.load(x_ptr + x_offsets, mask=mask).to(tl.float32)
    # the bias has one value per column; it stays in cache across rows
    bias = tl.load(bias_ptr + offsets % n_cols, mask=mask).to(tl.float32)
    # y = act(x + bias), the sum kept in float32 (never rounded to a 16-bit dtype)
    value, _ = _value_and_slope(x + bias, epsilon, ORDER, SYMMETRIC)
    tl.store(y_ptr + offsets, value.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def bias_backward_kernel(
    grad_output_ptr, x_ptr, bias_ptr, grad_x_ptr, n_elements, n_cols, x_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    x_offsets = _memory_offsets(offsets, n_cols, x_row_stride, FLAT)
    x = tl.load(x_ptr + x_offsets, mask=mask).to(tl.float32)
    bias = tl.load(bias_ptr + offsets % n_cols, mask=mask).to(tl.float32)
    grad_output = tl.load(grad_output_ptr + offsets, mask=mask).to(tl.float32)
    # recompute z = x + bias rather than saving it: grad_z = grad_output * act'(z)
    _, slope = _value_and_slope(x + bias, epsilon, ORDER, SYMMETRIC)
    grad_x = grad_output * slope
    tl.store(grad_x_ptr + offsets, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gated_forward_kernel(
    gate_ptr, up_ptr, y_ptr, n_elements, n_cols, gate_row_stride, up_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    gate_offsets = _memory_offsets(offsets, n_cols, gate_row_stride, FLAT)
    up_offsets = _memory_offsets(offsets, n_cols, up_row_stride, FLAT)
    gate = tl.load(gate_ptr + gate_offsets, mask=mask).to(tl.float32)
    up = tl.load(up_ptr + up_offsets, mask=mask).to(tl.float32)
    # GEM-GLU: y = act(gate) * up
    value, _ = _value_and_slope(gate, epsilon, ORDER, SYMMETRIC)
    tl.store(y_ptr + offsets, (value * up).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gated_backward_kernel(
    grad_output_ptr, gate_ptr, up_ptr, grad_gate_ptr, grad_up_ptr,
    n_elements, n_cols, gate_row_stride, up_row_stride, epsilon,
    ORDER: tl.constexpr, SYMMETRIC: tl.constexpr, FLAT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    offsets, mask = _block_offsets(n_elements, BLOCK_SIZE)
    gate_offsets = _memory_offsets(offsets, n_cols, gate_row_stride, FLAT)
    up_offsets = _memory_offsets(offsets, n_cols, up_row_stride, FLAT)
    gate = tl.load(gate_ptr + gate_offsets, mask=mask).to(tl.float32)
    up = tl.load(up_ptr + up_offsets, mask=mask).to(tl.float32)
    grad_output = tl.load(grad_output_ptr + offsets, mask=mask).to(tl.float32)
    # one gate evaluation gives both act(gate) and act'(gate), recomputed from the inputs
    value, slope = _value_and_slope(gate, epsilon, ORDER, SYMMETRIC)
    # d/d gate = grad_output * up * act'(gate)
    grad_gate = grad_output * up * slope
    # d/d up = grad_output * act(gate)
    grad_up = grad_output * value
    tl.store(grad_gate_ptr + offsets, grad_gate.to(grad_gate_ptr.dtype.element_ty), mask=mask)
    tl.store(grad_up_ptr + offsets, grad_up.to(grad_up_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------
# Launchers. ``wrap`` is ``torch.library.wrap_triton`` inside a ``triton_op`` (so that
# torch.compile can see the kernel) and the identity when a kernel is called directly.


def direct(kernel):
    """Launch a kernel as it is (outside a ``triton_op``, or through the interpreter)."""
    return kernel


def output_like(tensor: torch.Tensor) -> torch.Tensor:
    """A new contiguous tensor shaped like ``tensor``: every output of a launcher comes from here.

    Uninitialised, because every element is written by a kernel; tests replace this function
    with one that fills NaN, to prove that claim.
    """
    return torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)


def as_rows(tensor: torch.Tensor):
    """(tensor, row_stride): the tensor itself when its rows can be read in place, else a copy.

    In place means: the last dimension has stride 1 and all leading dimensions collapse into
    one row index with a single stride (true for contiguous tensors and for slices of the last
    dimension). Anything else (a transpose, a step in the last dimension) is copied once.
    """
    n_cols = tensor.shape[-1] if tensor.dim() else 1
    if tensor.is_contiguous():
        return tensor, n_cols
    if tensor.dim() >= 2 and tensor.stride(-1) == 1:
        sizes, strides = tensor.shape, tensor.stride()
        collapses = all(
            strides[dim] == strides[dim + 1] * sizes[dim + 1] for dim in range(tensor.dim() - 2)
        )
        if collapses:
            return tensor, strides[-2]
    return tensor.contiguous(), n_cols


def _launch_arguments(tensor: torch.Tensor, variant: str, order: int, epsilon: float):
    """Grid and compile-time constants shared by every launch on a tensor of this shape."""
    grid = (triton.cdiv(tensor.numel(), BLOCK_SIZE),)
    constants = dict(
        ORDER=order, SYMMETRIC=variant == "segem", BLOCK_SIZE=BLOCK_SIZE, num_warps=NUM_WARPS
    )
    return grid, float(epsilon), constants


def _n_cols(tensor: torch.Tensor) -> int:
    return tensor.shape[-1] if tensor.dim() else 1


def activation(x, variant, order, epsilon, wrap=direct):
    """y = act(x), contiguous, in x's dtype."""
    y = output_like(x)
    if x.numel() == 0:
        return y
    rows, row_stride = as_rows(x)
    grid, epsilon, constants = _launch_arguments(x, variant, order, epsilon)
    n_cols = _n_cols(x)
    wrap(activation_forward_kernel)[grid](
        rows, y, x.numel(), n_cols, row_stride, epsilon, FLAT=row_stride == n_cols, **constants
    )
    return y


def activation_backward(grad_output, x, variant, order, epsilon, wrap=direct):
    """grad_x = grad_output * act'(x), in x's dtype."""
    grad_x = output_like(x)
    if x.numel() == 0:
        return grad_x
    rows, row_stride = as_rows(x)
    grid, epsilon, constants = _launch_arguments(x, variant, order, epsilon)
    n_cols = _n_cols(x)
    wrap(activation_backward_kernel)[grid](
        grad_output.contiguous(), rows, grad_x, x.numel(), n_cols, row_stride, epsilon,
        FLAT=row_stride == n_cols, **constants,
    )
    return grad_x


def bias_activation(x, bias, variant, order, epsilon, wrap=direct):
    """y = act(x + bias) with bias along the last dimension, in x's dtype."""
    y = output_like(x)
    if x.numel() == 0:
        return y
    rows, row_stride = as_rows(x)
    grid, epsilon, constants = _launch_arguments(x, variant, order, epsilon)
    n_cols = _n_cols(x)
    wrap(bias_forward_kernel)[grid](
        rows, bias.contiguous(), y, x.numel(), n_cols, row_stride, epsilon,
        FLAT=row_stride == n_cols, **constants,
    )
    return y


def bias_activation_backward(grad_output, x, bias, variant, order, epsilon, wrap=direct):
    """grad of the pre-activation x + bias: grad_output * act'(x + bias), in x's dtype."""
    grad_x = output_like(x)
    if x.numel() == 0:
        return grad_x
    rows, row_stride = as_rows(x)
    grid, epsilon, constants = _launch_arguments(x, variant, order, epsilon)
    n_cols = _n_cols(x)
    wrap(bias_backward_kernel)[grid](
        grad_output.contiguous(), rows, bias.contiguous(), grad_x, x.numel(), n_cols,
        row_stride, epsilon, FLAT=row_stride == n_cols, **constants,
    )
    return grad_x


def gated_activation(gate, up, variant, order, epsilon, wrap=direct):
    """y = act(gate) * up, in gate's dtype."""
    y = output_like(gate)
    if gate.numel() == 0:
        return y
    gate_rows, gate_stride, up_rows, up_stride, flat = _gated_rows(gate, up)
    grid, epsilon, constants = _launch_arguments(gate, variant, order, epsilon)
    wrap(gated_forward_kernel)[grid](
        gate_rows, up_rows, y, gate.numel(), _n_cols(gate), gate_stride, up_stride, epsilon,
        FLAT=flat, **constants,
    )
    return y


def gated_activation_backward(grad_output, gate, up, variant, order, epsilon, wrap=direct):
    """(grad_gate, grad_up) of y = act(gate) * up, in the inputs' dtypes."""
    grad_gate = output_like(gate)
    grad_up = output_like(up)
    if gate.numel() == 0:
        return grad_gate, grad_up
    gate_rows, gate_stride, up_rows, up_stride, flat = _gated_rows(gate, up)
    grid, epsilon, constants = _launch_arguments(gate, variant, order, epsilon)
    wrap(gated_backward_kernel)[grid](
        grad_output.contiguous(), gate_rows, up_rows, grad_gate, grad_up, gate.numel(),
        _n_cols(gate), gate_stride, up_stride, epsilon, FLAT=flat, **constants,
    )
    return grad_gate, grad_up


def _gated_rows(gate, up):
    """Row views of both inputs; FLAT only when both are plain contiguous runs."""
    gate_rows, gate_stride = as_rows(gate)
    up_rows, up_stride = as_rows(up)
    n_cols = _n_cols(gate)
    return gate_rows, gate_stride, up_rows, up_stride, gate_stride == up_stride == n_cols
