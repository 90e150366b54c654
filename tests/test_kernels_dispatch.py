"""The dispatcher and the custom operators: paths, autograd, fallbacks and bad input.

The ``triton`` backend runs the kernels through Triton's interpreter on CPU tensors, so the
whole operator path (registration, autograd, double backward) is exercised without a GPU.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from hf_gem import functional
from hf_gem.autograd import GemActivationFunction, gem_activation
from hf_gem.kernels import (
    apply_activation, apply_bias_activation, apply_gated_activation, backend, custom_ops,
    get_backend, set_backend,
)

PARAMETERS = [("gem", 2, 1.0), ("egem", 1, 1e-4), ("segem", 2, 1e-4)]
PARAMETER_IDS = ["gem-n2", "egem-n1", "segem-n2"]


@pytest.fixture
def forced_backend():
    """Set a backend for one test and restore the previous one (and its failures) after."""
    previous = get_backend()
    yield set_backend
    set_backend(previous)


def saved_bytes(function):
    total = []

    def pack(tensor):
        total.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return sum(total)


def test_set_backend_checks_the_name(forced_backend):
    with pytest.raises(ValueError, match="auto, eager, compiled, triton"):
        set_backend("cuda")
    assert forced_backend("eager") in backend.BACKENDS
    assert get_backend() == "eager"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("HF_GEM_BACKEND", "Compiled")
    assert backend._read_environment() == "compiled"
    monkeypatch.setenv("HF_GEM_BACKEND", "fastest")
    monkeypatch.setattr(backend, "_state", dict(backend._state, warned=set()))
    with pytest.warns(RuntimeWarning, match="HF_GEM_BACKEND='fastest' is not one of"):
        assert backend._read_environment() == "auto"


def test_auto_keeps_small_cpu_tensors_on_the_core_function():
    """The default path for the sizes tests and small runs use compiles nothing."""
    assert get_backend() == "auto"
    x = torch.randn(1000, requires_grad=True)
    assert backend.operator_path(x) == "reference"
    grad_fn = apply_activation(x, "gem", 2, 1.0).grad_fn
    assert type(grad_fn).__name__ == f"{GemActivationFunction.__name__}Backward"


def test_auto_compiles_large_cpu_calls_only_once_a_run_has_proved_long(monkeypatch):
    if not backend._compiled_possible(torch.empty(1)):
        pytest.skip("no C++ compiler for torch.compile on CPU")
    monkeypatch.setattr(backend, "_state", dict(backend._state, eager_elements=0))
    monkeypatch.setattr(backend, "COMPILE_AFTER_ELEMENTS", 2 * backend.COMPILED_MIN_ELEMENTS)
    large = torch.empty(backend.COMPILED_MIN_ELEMENTS)
    small = torch.empty(backend.COMPILED_MIN_ELEMENTS - 1)
    assert [backend.operator_path(large) for _ in range(3)] == [
        "reference", "reference", "compiled"
    ]
    assert backend.operator_path(small) == "reference"
    assert backend.operator_path(large.double()) == "reference"


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_non_floating_inputs_raise_type_error(dtype):
    x = torch.ones(4, dtype=dtype)
    with pytest.raises(TypeError, match=f"x has dtype {dtype}"):
        apply_activation(x, "gem", 1, 1.0)
    with pytest.raises(TypeError, match="bias has dtype"):
        apply_bias_activation(torch.ones(2, 4), x, "gem", 1, 1.0)
    with pytest.raises(TypeError, match="up has dtype"):
        apply_gated_activation(torch.ones(4), x, "gem", 1, 1.0)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"gate \(3, 4\) and up \(3, 5\)"):
        apply_gated_activation(torch.ones(3, 4), torch.ones(3, 5), "gem", 1, 1.0)
    with pytest.raises(ValueError, match=r"bias of shape \(5,\) does not fit x of shape \(3, 4\)"):
        apply_bias_activation(torch.ones(3, 4), torch.ones(5), "gem", 1, 1.0)
    with pytest.raises(ValueError, match=r"bias of shape \(1, 4\)"):
        apply_bias_activation(torch.ones(3, 4), torch.ones(1, 4), "gem", 1, 1.0)
    with pytest.raises(ValueError, match=r"x of shape \(\)"):
        apply_bias_activation(torch.tensor(1.0), torch.ones(1), "gem", 1, 1.0)


@pytest.mark.parametrize("name", ["triton", "compiled", "auto"])
def test_float64_takes_the_eager_path_with_double_backward(name, forced_backend):
    forced_backend(name)
    x = torch.randn(30, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-2, torch.full_like(x, 0.5), x).requires_grad_()
    bias = torch.randn(30, dtype=torch.float64, requires_grad=True)
    up = torch.randn(30, dtype=torch.float64, requires_grad=True)
    for variant, order, epsilon in PARAMETERS:
        assert torch.autograd.gradgradcheck(
            lambda t: apply_activation(t, variant, order, epsilon), (x,), eps=1e-6, atol=1e-7
        )
        assert torch.autograd.gradgradcheck(
            lambda t, b: apply_bias_activation(t, b, variant, order, epsilon), (x, bias),
            eps=1e-6, atol=1e-7,
        )
        assert torch.autograd.gradgradcheck(
            lambda g, u: apply_gated_activation(g, u, variant, order, epsilon), (x, up),
            eps=1e-6, atol=1e-7,
        )


def _float64_gradients(function, inputs, grad_output):
    """Value, first gradients and a second-order product of ``function``, all in float64."""
    exact = [tensor.detach().double().requires_grad_() for tensor in inputs]
    value = function(*exact)
    firsts = torch.autograd.grad(value, exact, grad_output.double(), create_graph=True)
    second = torch.autograd.grad(
        sum(first.sum() for first in firsts), exact, allow_unused=True, materialize_grads=True
    )
    return value.detach(), [first.detach() for first in firsts], second


@pytest.mark.parametrize("variant,order,epsilon", PARAMETERS, ids=PARAMETER_IDS)
@pytest.mark.parametrize("form", ["activation", "bias", "gated"])
def test_operators_autograd_through_the_interpreted_kernels(
    form, variant, order, epsilon, forced_backend
):
    """Values, gradients and double backward of the operator path against float64 eager."""
    forced_backend("triton")
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(23, 19, generator=generator) * 2
    other = torch.randn(19 if form == "bias" else (23, 19), generator=generator)
    grad_output = torch.randn(23, 19, generator=generator)
    operators = {
        "activation": lambda a, b: apply_activation(a, variant, order, epsilon),
        "bias": lambda a, b: apply_bias_activation(a, b, variant, order, epsilon),
        "gated": lambda a, b: apply_gated_activation(a, b, variant, order, epsilon),
    }
    # The core autograd Function in float64: closed-form second derivative, finite at x <= 0.
    formulas = {
        "activation": lambda a, b: gem_activation(a, variant, order, epsilon) + 0 * b.sum(),
        "bias": lambda a, b: gem_activation(a + b, variant, order, epsilon),
        "gated": lambda a, b: gem_activation(a, variant, order, epsilon) * b,
    }
    inputs = [x.requires_grad_(), other.requires_grad_()]
    value = operators[form](*inputs)
    assert "hf_gem" in type(value.grad_fn).__name__
    firsts = torch.autograd.grad(
        value, inputs, grad_output, create_graph=True, allow_unused=True, materialize_grads=True
    )
    second = torch.autograd.grad(sum(first.sum() for first in firsts), inputs, allow_unused=True)

    expected_value, expected_firsts, expected_second = _float64_gradients(
        formulas[form], inputs, grad_output
    )
    torch.testing.assert_close(value.double(), expected_value, rtol=1e-5, atol=1e-6)
    for actual, expected in zip(firsts, expected_firsts):
        torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=1e-5)
    for actual, expected in zip(second, expected_second):
        actual = torch.zeros_like(expected) if actual is None else actual.double()
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["auto", "triton"])
def test_operators_save_only_their_inputs(name, forced_backend):
    forced_backend(name)
    x = torch.randn(64, 33, requires_grad=True)
    bias = torch.randn(33, requires_grad=True)
    up = torch.randn(64, 33, requires_grad=True)
    x_bytes, bias_bytes = x.numel() * 4, bias.numel() * 4
    assert saved_bytes(lambda: apply_activation(x, "segem", 1, 1e-4)) == x_bytes
    bias_form = saved_bytes(lambda: apply_bias_activation(x, bias, "gem", 2, 1.0))
    assert bias_form == x_bytes + bias_bytes
    assert saved_bytes(lambda: apply_gated_activation(x, up, "egem", 2, 1e-4)) == 2 * x_bytes


def test_a_failing_kernel_falls_back_with_one_warning(forced_backend, monkeypatch):
    forced_backend("triton")
    kernels = backend.triton_kernels("cpu")

    def broken(*arguments):
        raise RuntimeError("no device for this kernel")

    monkeypatch.setattr(kernels, "activation", broken)
    monkeypatch.setattr(backend, "_state", dict(backend._state, warned=set(), disabled=set()))
    x = torch.randn(50)
    expected = functional.activation(x, "gem", 2, 1.0)
    with pytest.warns(RuntimeWarning, match="a Triton kernel failed .*no device for this kernel"):
        torch.testing.assert_close(apply_activation(x, "gem", 2, 1.0), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call is silent and still correct
        torch.testing.assert_close(apply_activation(x, "gem", 2, 1.0), expected)


def test_a_failing_compilation_falls_back_with_one_warning(forced_backend, monkeypatch):
    forced_backend("compiled")

    def broken(kind, *arguments):
        raise RuntimeError("compiler exploded")

    monkeypatch.setattr(custom_ops.compiled, "run", broken)
    monkeypatch.setattr(backend, "_state", dict(backend._state, warned=set(), disabled=set()))
    x = torch.randn(50, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="torch.compile of the fused formula failed"):
        value = apply_gated_activation(x, x, "segem", 1, 1e-4)
    expected = functional.activation(x.detach(), "segem", 1, 1e-4) * x.detach()
    torch.testing.assert_close(value.detach(), expected)


def test_compiled_path_matches_the_formulas(forced_backend):
    """The torch.compile-fused path (one compilation per operation, dynamic shapes)."""
    if not backend._compiled_possible(torch.empty(1)):
        pytest.skip("no C++ compiler for torch.compile on CPU")
    forced_backend("compiled")
    for size in (1000, 3001):  # a second size must not recompile or change results
        x = (torch.randn(size) * 3).requires_grad_()
        grad_output = torch.randn(size)
        value = apply_activation(x, "egem", 2, 1e-4)
        (grad,) = torch.autograd.grad(value, x, grad_output)
        exact = x.detach().double()
        expected = functional.activation(exact, "egem", 2, 1e-4)
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-30)
        expected = grad_output.double() * functional.derivative(exact, "egem", 2, 1e-4)
        torch.testing.assert_close(grad.double(), expected, rtol=1e-6, atol=1e-30)
    assert not backend._state["disabled"], "the compiled path failed and fell back"


@pytest.mark.parametrize("kind", list(custom_ops.SCHEMAS))
def test_operators_pass_opcheck(kind):
    """torch.library's own checks: schema, fake tensors, autograd registration, AOT dispatch."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=generator, requires_grad=True)
    other = torch.randn(6, 5, generator=generator, requires_grad=True)
    bias = torch.randn(5, generator=generator, requires_grad=True)
    tensors = {
        "activation": (x,), "activation_backward": (other, x),
        "bias_activation": (x, bias), "bias_activation_backward": (other, x, bias),
        "gated_activation": (x, other), "gated_activation_backward": (x.detach(), x, other),
    }[kind]
    operator = getattr(torch.ops.hf_gem, kind).default
    torch.library.opcheck(operator, (*tensors, "segem", 2, 1e-4))
