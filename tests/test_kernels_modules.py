"""The modules built on the fused forms: GEM-GLU by name, Linear + GEM, fused transformer MLPs."""

from __future__ import annotations

import pytest
import torch

import hf_gem
from hf_gem import functional
from hf_gem.modules import GemGLU, GemLinear
from hf_gem.names import GemSpec, parse_name


@pytest.mark.parametrize(
    "name,variant,order,epsilon",
    [("gem_glu", "gem", 1, 1.0), ("gem_n2_glu", "gem", 2, 1.0),
     ("egem_eps10_glu", "egem", 1, 10.0), ("SE-GEM_n2_eps1e-4_GLU", "segem", 2, 1e-4)],
)
def test_glu_names_parse_and_round_trip(name, variant, order, epsilon):
    spec = parse_name(name)
    assert (spec.variant, spec.order, spec.epsilon, spec.gated) == (variant, order, epsilon, True)
    assert spec.name.endswith("_glu") and parse_name(spec.name) == spec
    assert "-GLU" in spec.display_name
    assert not parse_name(name.lower().replace("_glu", "")).gated


def test_glu_suffix_must_come_last():
    with pytest.raises(ValueError, match="Unknown activation"):
        parse_name("egem_glu_eps10")


def test_glu_module_from_a_config_name_splits_the_last_dimension():
    from transformers.activations import ACT2FN

    module = ACT2FN["segem_n2_glu"]
    assert isinstance(module, GemGLU) and module.spec == parse_name("segem_n2_glu")
    x = torch.randn(4, 3, 10, dtype=torch.float64, requires_grad=True)
    gate, up = x.detach().chunk(2, dim=-1)
    expected = functional.activation(gate, "segem", 2, 1e-4) * up
    value = module(x)
    assert value.shape == (4, 3, 5)
    torch.testing.assert_close(value.detach(), expected, rtol=1e-12, atol=1e-300)
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-7)


def test_glu_module_two_tensor_form_and_errors():
    module = hf_gem.activation_from_name("gem_n2_glu")
    gate, up = torch.randn(6, 7), torch.randn(6, 7)
    expected = functional.activation(gate, "gem", 2, 1.0) * up
    torch.testing.assert_close(module(gate, up), expected)
    with pytest.raises(ValueError, match=r"must be even; got an input of shape \(6, 7\)"):
        module(gate)
    with pytest.raises(ValueError, match=r"gate \(6, 7\) and up \(6, 8\)"):
        module(gate, torch.randn(6, 8))


def test_gem_linear_matches_linear_then_activation():
    torch.manual_seed(0)
    layer = GemLinear(9, 13, parse_name("segem_eps1e-4"), dtype=torch.float64)
    x = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    expected = functional.activation(torch.nn.functional.linear(x, layer.weight, layer.bias),
                                     "segem", 1, 1e-4)
    torch.testing.assert_close(layer(x), expected)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-7)
    assert set(layer.state_dict()) == {"weight", "bias"}
    no_bias = GemLinear(9, 13, parse_name("gem"), bias=False)
    assert no_bias(x.float()).shape == (5, 13)
    with pytest.raises(ValueError, match="GemGLU"):
        GemLinear(9, 13, GemSpec("gem", gated=True))


def _tiny_models():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    gpt2 = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16,
                      activation_function="gem_n2", bos_token_id=0, eos_token_id=0)
    llama = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=48,
                        num_attention_heads=2, num_key_value_heads=2, vocab_size=64,
                        hidden_act="segem_eps1e-4", bos_token_id=0, eos_token_id=0)
    return {"gpt2": GPT2LMHeadModel(gpt2), "llama": LlamaForCausalLM(llama)}


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_fuse_gem_mlps_keeps_outputs_gradients_and_state_dict(family):
    from hf_gem.integrations.transformers import (
        FusedBiasGemMLP, FusedGatedGemMLP, fuse_gem_mlps,
    )

    torch.manual_seed(0)
    model = _tiny_models()[family].eval()
    ids = torch.randint(0, 64, (2, 9))
    expected = model(ids).logits
    expected_grads = torch.autograd.grad(expected.square().mean(), list(model.parameters()))
    keys = list(model.state_dict())

    assert hf_gem.integrations.transformers.fuse_gem_mlps(model) == 2
    fused_type = FusedBiasGemMLP if family == "gpt2" else FusedGatedGemMLP
    assert sum(isinstance(module, fused_type) for module in model.modules()) == 2
    assert list(model.state_dict()) == keys
    actual = model(ids).logits
    actual_grads = torch.autograd.grad(actual.square().mean(), list(model.parameters()))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(actual_grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert fuse_gem_mlps(model) == 0  # already fused
