"""Values and derivatives against the 50-digit reference table, in every precision."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
import torch

import hf_gem
from hf_gem import functional
from hf_gem.names import GemSpec

from conftest import load_reference_rows


def _grouped_rows():
    groups = defaultdict(list)
    for row in load_reference_rows():
        groups[(row["kind"], row["n"], row["eps"])].append(row)
    return sorted(groups.items())


GROUPS = _grouped_rows()
GROUP_IDS = [f"{kind}-n{n}-eps{eps:g}" for (kind, n, eps), _ in GROUPS]

# (dtype, relative tolerance, absolute floor for values that round to zero)
PRECISIONS = [
    (torch.float64, 1e-12, 1e-300),
    (torch.float32, 1e-6, 1e-30),
    (torch.bfloat16, 1e-2, 1e-30),
]


def _module_for(kind, n, eps):
    spec = GemSpec(kind, n, 1.0 if kind == "gem" else eps)
    return hf_gem.modules.module_for_spec(spec)


def _expected(rows, key):
    return torch.tensor([float(row[key]) for row in rows], dtype=torch.float64)


def _assert_relative(actual, expected, rtol, atol):
    actual = actual.to(torch.float64)
    error = (actual - expected).abs()
    allowed = rtol * expected.abs() + atol
    worst = (error / allowed).max().item()
    assert worst <= 1.0, f"worst error is {worst:.3g} x the tolerance: {actual} vs {expected}"


def test_table_covers_every_variant():
    kinds = {kind for (kind, _, _), _ in GROUPS}
    assert kinds == {"gem", "egem", "segem"}
    assert len(load_reference_rows()) == 135


@pytest.mark.parametrize("dtype,rtol,atol", PRECISIONS, ids=["f64", "f32", "bf16"])
@pytest.mark.parametrize("key,rows", GROUPS, ids=GROUP_IDS)
def test_values_and_derivatives_match_reference(key, rows, dtype, rtol, atol):
    kind, n, eps = key
    points = torch.tensor([row["x"] for row in rows], dtype=torch.float64)
    # The inputs themselves must be representable; bfloat16 rounds 0.001 and 0.01, so the
    # reference is compared at the rounded point, evaluated in float64 by the same formula.
    x = points.to(dtype)
    module = _module_for(kind, n, eps)
    expected_value, expected_slope = _expected(rows, "y"), _expected(rows, "dy")
    if dtype == torch.bfloat16:
        exact = x.to(torch.float64)
        expected_value = functional.activation(exact, kind, n, 1.0 if kind == "gem" else eps)
        expected_slope = functional.derivative(exact, kind, n, 1.0 if kind == "gem" else eps)

    x.requires_grad_(True)
    value = module(x)
    (slope,) = torch.autograd.grad(value.sum(), x)
    assert value.dtype == dtype and slope.dtype == dtype
    _assert_relative(value.detach(), expected_value, rtol, atol)
    _assert_relative(slope, expected_slope, rtol, atol)


@pytest.mark.parametrize("key,rows", GROUPS, ids=GROUP_IDS)
def test_float64_formula_matches_reference_exactly(key, rows):
    """The bfloat16 test above leans on the float64 formula: check it here to 1e-12."""
    kind, n, eps = key
    eps = 1.0 if kind == "gem" else eps
    x = torch.tensor([row["x"] for row in rows], dtype=torch.float64)
    _assert_relative(functional.activation(x, kind, n, eps), _expected(rows, "y"), 1e-12, 1e-300)
    _assert_relative(functional.derivative(x, kind, n, eps), _expected(rows, "dy"), 1e-12, 1e-300)


@pytest.mark.parametrize(
    "variant,order", list(itertools.product(["gem", "egem", "segem"], [1, 2, 3]))
)
def test_gradcheck_and_gradgradcheck(variant, order):
    epsilon = 1.0 if variant == "gem" else 0.3
    module = hf_gem.modules.module_for_spec(GemSpec(variant, order, epsilon))
    generator = torch.Generator().manual_seed(order)
    x = torch.randn(40, generator=generator, dtype=torch.float64) * 1.5
    # Finite differences straddling 0 measure truncation error, not the gradient: keep clear.
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x).requires_grad_()
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(module, (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("variant,expected_slope", [("gem", 0.0), ("egem", 0.0), ("segem", 0.5)])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_double_backward_at_the_junction(variant, expected_slope, order):
    """At x = 0 the slope is 0 (E-GEM) or 1/2 (SE-GEM) and the curvature is exactly 0."""
    epsilon = 1.0 if variant == "gem" else 1e-4
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    value = hf_gem.modules.module_for_spec(GemSpec(variant, order, epsilon))(x)
    (slope,) = torch.autograd.grad(value.sum(), x, create_graph=True)
    (curvature,) = torch.autograd.grad(slope.sum(), x)
    assert torch.equal(slope.detach(), torch.full_like(x, expected_slope))
    assert torch.equal(curvature, torch.zeros_like(x))


@pytest.mark.parametrize("variant", ["egem", "segem"])
def test_second_derivative_matches_autograd_of_the_formula(variant):
    """The closed-form second derivative equals autograd differentiating the first one."""
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    x = x[x != 0].requires_grad_()
    slope = functional.derivative(x, variant, 2, 0.5)
    (curvature_by_autograd,) = torch.autograd.grad(slope.sum(), x)
    curvature = functional.second_derivative(x.detach(), variant, 2, 0.5)
    torch.testing.assert_close(curvature, curvature_by_autograd, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", ["gem", "egem", "segem"])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_chunked_evaluation_matches_the_formulas(variant, order):
    """eager.py (chunked, in place) computes what functional.py states, across chunk edges."""
    from hf_gem import eager

    epsilon = 1.0 if variant == "gem" else 1e-3
    size = 3 * eager.CHUNK_ELEMENTS + 17
    x = torch.randn(size, dtype=torch.float64) * 4  # fresh inputs each run
    x[:6] = torch.tensor([0.0, -0.0, 1e300, -1e300, 1e-300, -1e-300])
    grad_output = torch.randn_like(x)
    torch.testing.assert_close(
        eager.activation(x, variant, order, epsilon),
        functional.activation(x, variant, order, epsilon), rtol=1e-12, atol=1e-15,
    )
    torch.testing.assert_close(
        eager.gradient(grad_output, x, variant, order, epsilon),
        grad_output * functional.derivative(x, variant, order, epsilon), rtol=1e-12, atol=1e-15,
    )
    strided = x.view(-1, 1).expand(size, 2)[:, 1]  # non-contiguous input
    torch.testing.assert_close(eager.activation(strided, variant, order, epsilon),
                               functional.activation(x, variant, order, epsilon))
