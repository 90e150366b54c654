"""``torch.compile(fullgraph=True)`` over a GPT-2 block with GEM on CPU: no graph break.

The GEM activation reaches the graph as the ``hf_gem::activation`` operator, which
decomposes into plain formulas on CPU (Inductor fuses them) and into the Triton kernel on a
GPU. Inductor compiles the inference graph; the training graph (forward and backward) is
checked with the ``aot_eager`` backend, which runs the same AOT autograd tracing without the
C++ build, to keep the test fast.
"""

from __future__ import annotations

import pytest
import torch

import hf_gem  # noqa: F401  registers the GEM names with transformers
from hf_gem.kernels import apply_bias_activation, apply_gated_activation

GPT2Config = pytest.importorskip("transformers").GPT2Config


def gpt2_block(seed: int = 0):
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    torch.manual_seed(seed)
    config = GPT2Config(
        n_embd=32, n_head=2, n_layer=1, n_positions=16, activation_function="gem_n2",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    config._attn_implementation = "sdpa"  # a block built on its own has no attention choice
    return GPT2Block(config)


def recording_backend(graphs: list):
    """A torch.compile backend that keeps the Dynamo graph's code and runs aot_eager."""
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(graph_module, example_inputs):
        graphs.append(graph_module.code)
        return aot_eager(graph_module, example_inputs)

    return backend


def test_gpt2_block_inference_compiles_with_inductor_and_matches_eager():
    block = gpt2_block().eval()
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        expected = block(x)[0]
        compiled = torch.compile(block, fullgraph=True)
        actual = compiled(x)[0]
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_gpt2_block_training_compiles_without_graph_breaks():
    block = gpt2_block().train()
    x = torch.randn(2, 8, 32, requires_grad=True)
    expected = block(x)[0]
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *block.parameters()])

    graphs = []
    compiled = torch.compile(block, fullgraph=True, backend=recording_backend(graphs))
    actual = compiled(x)[0]
    actual_grads = torch.autograd.grad(actual.square().sum(), [x, *block.parameters()])

    assert len(graphs) == 1 and "hf_gem.activation" in graphs[0]
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(actual_grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_fused_forms_compile_without_graph_breaks():
    def mlp(x, weight, bias, up):
        hidden = apply_bias_activation(x @ weight, bias, "segem", 1, 1e-4)
        return apply_gated_activation(hidden, up, "gem", 2, 1.0).sum()

    generator = torch.Generator().manual_seed(1)
    inputs = [
        torch.randn(5, 7, generator=generator), torch.randn(7, 11, generator=generator),
        torch.randn(11, generator=generator), torch.randn(5, 11, generator=generator),
    ]
    inputs = [tensor.requires_grad_() for tensor in inputs]
    expected = torch.autograd.grad(mlp(*inputs), inputs)
    graphs = []
    compiled = torch.compile(mlp, fullgraph=True, backend=recording_backend(graphs))
    actual = torch.autograd.grad(compiled(*inputs), inputs)
    assert len(graphs) == 1
    assert "hf_gem.bias_activation" in graphs[0] and "hf_gem.gated_activation" in graphs[0]
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
