"""The Triton kernels, run on CPU through Triton's interpreter, against float64 references.

``hf_gem.kernels.backend.triton_kernels("cpu")`` loads the kernel file with
``TRITON_INTERPRET=1``, so these tests need no GPU and do not depend on the order in which
test modules import Triton. Every output is pre-filled with NaN, so an element the kernel
forgets to write fails the comparison. Random inputs are fresh on each run; a failure prints
its seed.

Tolerances, as relative errors to the float64 formula evaluated at the same (rounded)
inputs: float32 1e-6, float16 1e-3, bfloat16 1e-2. One case needs care: the SE-GEM
derivative crosses zero for x < 0, where (1 - F)(1/2 - N F) cancels, and no float32
evaluation keeps relative accuracy right at that zero. There the error is measured against
the change a relative perturbation of x would cause (|g x act''(x)|), the usual yardstick for
an ill-conditioned point; everywhere else the plain relative error is checked.
"""

from __future__ import annotations

import random

import pytest
import torch

from hf_gem import functional
from hf_gem.kernels import backend

from conftest import load_reference_rows

triton = pytest.importorskip("triton")

KERNELS = backend.triton_kernels("cpu")
SPECS = [
    ("gem", 1, 1.0), ("gem", 2, 1.0), ("egem", 1, 1e-4), ("egem", 2, 10.0),
    ("segem", 1, 1e-4), ("segem", 2, 1e-4), ("segem", 1, 10.0),
]
SPEC_IDS = [f"{v}-n{n}-eps{e:g}" for v, n, e in SPECS]
# dtype -> (relative tolerance, absolute floor for results that underflow the dtype)
TOLERANCES = {
    torch.float32: (1e-6, 1e-37),
    torch.float16: (1e-3, 6e-8),
    torch.bfloat16: (1e-2, 1e-37),
}
DTYPES = list(TOLERANCES)
DTYPE_IDS = ["f32", "f16", "bf16"]


@pytest.fixture(autouse=True)
def nan_filled_outputs(monkeypatch):
    """Every launcher output starts as NaN; quiet numpy while the interpreter runs."""

    def output_like(tensor):
        return torch.full(tensor.shape, float("nan"), dtype=tensor.dtype, device=tensor.device)

    monkeypatch.setattr(KERNELS, "output_like", output_like)
    with backend.interpreter_quiet(torch.empty(0)):
        yield


def fresh_generator():
    seed = random.SystemRandom().randrange(2**31)
    return torch.Generator().manual_seed(seed), seed


def mixed_inputs(shape, generator, dtype=torch.float64):
    """Normal samples with magnitudes spread from 1e-3 to 30, both signs, exact zeros too."""
    normal = torch.randn(shape, generator=generator, dtype=torch.float64)
    scale = 10.0 ** (torch.rand(shape, generator=generator, dtype=torch.float64) * 4 - 3)
    values = normal * scale * 3
    values.view(-1)[::97] = 0.0
    return values.to(dtype)


def assert_matches(actual, expected, dtype, sensitivity=None, what=""):
    """Relative error within the dtype's tolerance (see the module docstring)."""
    rtol, atol = TOLERANCES[dtype]
    actual = actual.to(torch.float64)
    assert not torch.isnan(actual).any(), f"{what}: NaN left in the output (element not written)"
    scale = expected.abs() if sensitivity is None else expected.abs() + sensitivity.abs()
    error = (actual - expected).abs()
    worst = (error / (rtol * scale + atol)).max().item()
    assert worst <= 1.0, f"{what}: worst error is {worst:.3g} x the {dtype} tolerance"


def slope_sensitivity(variant, grad_output, x, order, epsilon):
    """|g x act''(x)| for the SE-GEM backward (see the module docstring); None otherwise."""
    if variant != "segem":
        return None
    return grad_output * x * functional.second_derivative(x, variant, order, epsilon)


def reference_groups():
    """The table's rows grouped by (variant, N, epsilon), one kernel launch per group."""
    groups = {}
    for row in load_reference_rows():
        epsilon = 1.0 if row["kind"] == "gem" else row["eps"]
        groups.setdefault((row["kind"], row["n"], epsilon), []).append(row)
    return groups


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_reference_table(dtype):
    """Every row of gem_reference.json, forward and backward, through the kernels."""
    for (variant, order, epsilon), rows in reference_groups().items():
        x = torch.tensor([row["x"] for row in rows], dtype=dtype)
        exact = x.to(torch.float64)
        if dtype == torch.float32:  # table points round to float32 within 1e-8 (relative)
            value = torch.tensor([float(row["y"]) for row in rows], dtype=torch.float64)
            slope = torch.tensor([float(row["dy"]) for row in rows], dtype=torch.float64)
        else:  # compare at the rounded inputs, with the float64 formula
            value = functional.activation(exact, variant, order, epsilon)
            slope = functional.derivative(exact, variant, order, epsilon)
        ones = torch.ones_like(x)
        what = f"{variant} N={order} eps={epsilon}"
        assert_matches(KERNELS.activation(x, variant, order, epsilon), value, dtype, what=what)
        grad = KERNELS.activation_backward(ones, x, variant, order, epsilon)
        sensitivity = slope_sensitivity(variant, ones.double(), exact, order, epsilon)
        assert_matches(grad, slope, dtype, sensitivity, what=what)
    assert sum(len(rows) for rows in reference_groups().values()) == 135


@pytest.mark.parametrize("size", [1, 127, 1025, 4099])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant,order,epsilon", SPECS, ids=SPEC_IDS)
def test_random_inputs_forward_and_backward(variant, order, epsilon, dtype, size):
    generator, seed = fresh_generator()
    x = mixed_inputs(size, generator, dtype)
    grad_output = torch.randn(size, generator=generator).to(dtype)
    exact, exact_grad = x.double(), grad_output.double()
    what = f"seed {seed}"

    value = KERNELS.activation(x, variant, order, epsilon)
    assert value.dtype == dtype and value.shape == x.shape
    assert_matches(value, functional.activation(exact, variant, order, epsilon), dtype, what=what)

    grad = KERNELS.activation_backward(grad_output, x, variant, order, epsilon)
    expected = exact_grad * functional.derivative(exact, variant, order, epsilon)
    sensitivity = slope_sensitivity(variant, exact_grad, exact, order, epsilon)
    assert_matches(grad, expected, dtype, sensitivity, what=what)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_special_values(dtype):
    """NaN -> NaN, +inf -> +inf, -inf -> 0, huge values stay finite, for every variant."""
    big = torch.finfo(dtype).max
    specials = [float("nan"), float("inf"), float("-inf"), big, -big, 0.0, -0.0]
    x = torch.tensor(specials, dtype=dtype)
    for variant, order, epsilon in SPECS:
        value = KERNELS.activation(x, variant, order, epsilon)
        expected = functional.activation(x, variant, order, epsilon)
        torch.testing.assert_close(value, expected, equal_nan=True, rtol=0, atol=0)
        grad = KERNELS.activation_backward(torch.ones_like(x), x, variant, order, epsilon)
        assert torch.isnan(grad[0]) and torch.isfinite(grad[1:]).all()


def test_non_contiguous_inputs():
    """Row slices are read in place through their stride; other layouts are copied first."""
    generator, seed = fresh_generator()
    base = mixed_inputs((37, 2, 66), generator, torch.float32)
    views = {
        "last-dim slice": base[:, 1, 5:50],
        "3-d slice": base[:, :, 3:64],
        "transpose": base[:, 0, :].t(),
        "step in last dim": base[..., ::3],
    }
    in_place = views["last-dim slice"]
    assert KERNELS.as_rows(in_place)[0].data_ptr() == in_place.data_ptr()
    for name, x in views.items():
        assert not x.is_contiguous()
        grad_output = torch.randn(x.shape, generator=generator)
        exact = x.double()
        for variant, order, epsilon in SPECS[::2]:
            what = f"{name}, {variant}, seed {seed}"
            value = KERNELS.activation(x, variant, order, epsilon)
            expected = functional.activation(exact, variant, order, epsilon)
            assert_matches(value, expected, torch.float32, what=what)
            grad = KERNELS.activation_backward(grad_output, x, variant, order, epsilon)
            expected = grad_output.double() * functional.derivative(exact, variant, order, epsilon)
            sensitivity = slope_sensitivity(variant, grad_output.double(), exact, order, epsilon)
            assert_matches(grad, expected, torch.float32, sensitivity, what=what)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5)])
def test_empty_tensors(shape):
    x = torch.empty(shape)
    bias = torch.zeros(shape[-1])
    assert KERNELS.activation(x, "gem", 2, 1.0).shape == shape
    assert KERNELS.activation_backward(x, x, "segem", 1, 1e-4).shape == shape
    assert KERNELS.bias_activation(x, bias, "gem", 1, 1.0).shape == shape
    grad_gate, grad_up = KERNELS.gated_activation_backward(x, x, x, "egem", 2, 1e-4)
    assert grad_gate.shape == grad_up.shape == shape


def test_scalar_input():
    x = torch.tensor(1.5)
    value = KERNELS.activation(x, "gem", 1, 1.0)
    assert value.shape == () and abs(value.item() - 1.5 * 2.25 / 3.25) < 1e-6


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant,order,epsilon", SPECS[1::2], ids=SPEC_IDS[1::2])
def test_bias_activation(variant, order, epsilon, dtype):
    """act(x + bias) and the gradient of the pre-activation, the sum kept in float32."""
    generator, seed = fresh_generator()
    x = mixed_inputs((41, 29), generator, dtype)
    bias = mixed_inputs(29, generator, dtype)
    grad_output = torch.randn(41, 29, generator=generator).to(dtype)
    total = x.double() + bias.double()
    what = f"seed {seed}"
    value = KERNELS.bias_activation(x, bias, variant, order, epsilon)
    assert_matches(value, functional.activation(total, variant, order, epsilon), dtype, what=what)
    grad = KERNELS.bias_activation_backward(grad_output, x, bias, variant, order, epsilon)
    expected = grad_output.double() * functional.derivative(total, variant, order, epsilon)
    sensitivity = slope_sensitivity(variant, grad_output.double(), total, order, epsilon)
    assert_matches(grad, expected, dtype, sensitivity, what=what)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant,order,epsilon", SPECS[::2], ids=SPEC_IDS[::2])
def test_gated_activation(variant, order, epsilon, dtype):
    """GEM-GLU act(gate) * up and both gradients, on the two halves of one packed tensor."""
    generator, seed = fresh_generator()
    packed = mixed_inputs((53, 2 * 41), generator, dtype)
    gate, up = packed.chunk(2, dim=-1)  # strided views, read in place
    grad_output = torch.randn(53, 41, generator=generator).to(dtype)
    exact_gate, exact_up, exact_grad = gate.double(), up.double(), grad_output.double()
    what = f"seed {seed}"
    value = KERNELS.gated_activation(gate, up, variant, order, epsilon)
    expected = functional.activation(exact_gate, variant, order, epsilon) * exact_up
    assert_matches(value, expected, dtype, what=what)

    grad_gate, grad_up = KERNELS.gated_activation_backward(
        grad_output, gate, up, variant, order, epsilon
    )
    slope = functional.derivative(exact_gate, variant, order, epsilon)
    expected_gate = exact_grad * exact_up * slope
    gate_sensitivity = slope_sensitivity(
        variant, exact_grad * exact_up, exact_gate, order, epsilon
    )
    assert_matches(grad_gate, expected_gate, dtype, gate_sensitivity, what=what)
    expected_up = exact_grad * functional.activation(exact_gate, variant, order, epsilon)
    assert_matches(grad_up, expected_up, dtype, what=what)
