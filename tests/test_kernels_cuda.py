"""The compiled Triton kernels on a CUDA device (skipped where there is none).

The interpreter tests check the kernels' arithmetic on CPU; these check the same kernels as
the GPU compiles them, the operator path with autograd, and torch.compile on the GPU, where
the operators decompose into the kernels themselves.
"""

from __future__ import annotations

import pytest
import torch

from hf_gem import functional
from hf_gem.kernels import apply_activation, apply_bias_activation, apply_gated_activation
from hf_gem.kernels import backend

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SPECS = [("gem", 2, 1.0), ("egem", 1, 1e-4), ("segem", 2, 1e-4)]
TOLERANCES = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("variant,order,epsilon", SPECS, ids=["gem-n2", "egem-n1", "segem-n2"])
def test_cuda_kernels_match_float64(variant, order, epsilon, dtype):
    assert backend.operator_path(torch.empty(1, device="cuda")) == "triton"
    generator = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.randn(1_000_003, device="cuda", generator=generator) * 3).to(dtype)
    grad_output = torch.randn(x.shape, device="cuda", generator=generator).to(dtype)
    x.requires_grad_()
    value = apply_activation(x, variant, order, epsilon)
    (grad,) = torch.autograd.grad(value, x, grad_output)
    exact, exact_grad = x.detach().double(), grad_output.double()
    rtol = TOLERANCES[dtype]
    expected = functional.activation(exact, variant, order, epsilon)
    torch.testing.assert_close(value.double(), expected, rtol=rtol, atol=1e-7)
    expected = exact_grad * functional.derivative(exact, variant, order, epsilon)
    # SE-GEM's derivative crosses zero for x < 0; compare there against the size of its terms
    torch.testing.assert_close(grad.double(), expected, rtol=rtol, atol=10 * rtol)


def test_cuda_fused_forms_and_compile():
    torch.manual_seed(0)
    x = torch.randn(4096, 1027, device="cuda", requires_grad=True)
    bias = torch.randn(1027, device="cuda", requires_grad=True)
    up = torch.randn(4096, 1027, device="cuda", requires_grad=True)

    def block(x, bias, up):
        return apply_gated_activation(apply_bias_activation(x, bias, "segem", 1, 1e-4), up,
                                      "gem", 2, 1.0)

    eager_value = block(x, bias, up)
    eager_grads = torch.autograd.grad(eager_value.sum(), (x, bias, up))
    compiled = torch.compile(block, fullgraph=True)
    value = compiled(x, bias, up)
    grads = torch.autograd.grad(value.sum(), (x, bias, up))
    torch.testing.assert_close(value, eager_value, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
