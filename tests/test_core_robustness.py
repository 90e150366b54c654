"""Finite in, finite out; smoothness order at 0; what autograd saves."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_gem import functional
from hf_gem.modules import module_for_spec
from hf_gem.names import GemSpec

VARIANTS = ["gem", "egem", "segem"]


def _every_finite_value(dtype: torch.dtype) -> torch.Tensor:
    """All finite values of a 16-bit float type, enumerated from their bit patterns."""
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    values = bits.view(dtype)
    return values[torch.isfinite(values)]


def _float32_sweep() -> torch.Tensor:
    magnitudes = torch.logspace(-45, math.log10(3.4e38), 20_001, dtype=torch.float64)
    magnitudes = magnitudes.clamp(max=torch.finfo(torch.float32).max).to(torch.float32)
    extremes = torch.tensor([torch.finfo(torch.float32).max, 3e38, 1.8e19, 4.3e9, 0.0])
    values = torch.cat([magnitudes, extremes])
    return torch.cat([values, -values])


def _forward_backward(spec: GemSpec, x: torch.Tensor):
    x = x.clone().requires_grad_(True)
    y = module_for_spec(spec)(x)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return y.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("order", [1, 2, 4])
@pytest.mark.parametrize("variant", VARIANTS)
def test_no_nan_or_inf_from_finite_inputs(variant, order, dtype):
    x = _float32_sweep() if dtype == torch.float32 else _every_finite_value(dtype)
    for epsilon in ([1.0] if variant == "gem" else [1e-6, 1e-4, 10.0]):
        y, grad = _forward_backward(GemSpec(variant, order, epsilon), x)
        assert y.dtype == dtype and grad.dtype == dtype
        bad = ~torch.isfinite(y) | ~torch.isfinite(grad)
        assert not bad.any(), f"non-finite output at x = {x[bad][:5].tolist()}"
        # Large inputs keep their size: the activation tends to x (or 0 from below).
        largest = x.abs().max()
        at_top = y[x == largest]
        assert torch.allclose(at_top.float(), largest.float(), rtol=1e-2)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_special_values(variant, dtype):
    epsilon = 1.0 if variant == "gem" else 1e-4
    x = torch.tensor([float("nan"), float("inf"), float("-inf")], dtype=dtype)
    y, grad = _forward_backward(GemSpec(variant, 2, epsilon), x)
    assert torch.isnan(y[0]) and torch.isnan(grad[0])
    assert y[1] == float("inf") and grad[1] == 1.0
    assert y[2] == 0.0 and grad[2] == 0.0


def test_low_precision_is_computed_in_float32():
    """A bfloat16 result equals the float32 result rounded once, as for GELU."""
    x = torch.linspace(-6, 6, 4097, dtype=torch.float32)
    for variant in VARIANTS:
        epsilon = 1.0 if variant == "gem" else 0.01
        wide = functional.activation(x.bfloat16().float(), variant, 2, epsilon)
        narrow = functional.activation(x.bfloat16(), variant, 2, epsilon)
        assert torch.equal(narrow, wide.bfloat16())


def _one_sided_derivative(variant, order, epsilon, point, degree):
    """The degree-th derivative of the float64 formula at ``point``, by nested autograd."""
    x = torch.tensor([point], dtype=torch.float64, requires_grad=True)
    value = functional.activation(x, variant, order, epsilon)
    for _ in range(degree):
        (value,) = torch.autograd.grad(value.sum(), x, create_graph=True)
    return value.item()


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("variant", VARIANTS)
def test_smoothness_is_exactly_2n_at_zero(variant, order):
    """One-sided derivatives at 0 of order 2N agree; those of order 2N + 1 do not.

    Each is evaluated at +h and -h for shrinking h: the jump of the 2N-th derivative
    vanishes like h, while that of the (2N+1)-th tends to (2N+1)!/epsilon (E-GEM) or
    (2N+1)!/epsilon split over both sides (SE-GEM).
    """
    epsilon = 1.0 if variant == "gem" else 0.5
    smooth, rough = 2 * order, 2 * order + 1
    expected_jump = math.factorial(rough) / epsilon
    for h in (1e-2, 1e-3, 1e-4):
        jumps = {
            degree: _one_sided_derivative(variant, order, epsilon, h, degree)
            - _one_sided_derivative(variant, order, epsilon, -h, degree)
            for degree in (smooth, rough)
        }
        assert abs(jumps[smooth]) < 10 * expected_jump * h
        assert jumps[rough] == pytest.approx(expected_jump, rel=20 * h)


def _saved_bytes(function, x):
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(x)
    return sum(saved)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("variant", VARIANTS)
def test_autograd_saves_only_the_input(variant, dtype):
    x = torch.randn(1000, 37, dtype=dtype, requires_grad=True)
    module = module_for_spec(GemSpec(variant, 2, 1.0 if variant == "gem" else 1e-4))
    input_bytes = x.numel() * x.element_size()
    assert _saved_bytes(module, x) == input_bytes
    assert _saved_bytes(F.gelu, x) == input_bytes
