"""GEM names in transformers: registry, config fields, swapping, save and reload."""

from __future__ import annotations

import importlib

import pytest
import torch
import transformers
from transformers import activations as hf_activations

import hf_gem
from hf_gem.integrations import transformers as integration
from hf_gem.modules import EGEM, GEM, SEGEM, GemActivation

NAMES = {
    "gem": (GEM, 1, 1.0),
    "gem_n2": (GEM, 2, 1.0),
    "egem_eps10": (EGEM, 1, 10.0),
    "egem_n3_eps0.25": (EGEM, 3, 0.25),  # never listed anywhere
    "SE-GEM_n2_eps1e-4": (SEGEM, 2, 1e-4),
    "segem_n5_eps7": (SEGEM, 5, 7.0),
}


@pytest.mark.parametrize("name", list(NAMES))
def test_every_lookup_path_resolves_gem_names(name):
    cls, order, epsilon = NAMES[name]
    assert name in hf_activations.ACT2FN
    for module in (hf_activations.ACT2FN[name], hf_activations.get_activation(name)):
        assert type(module) is cls
        assert (module.order, module.epsilon) == (order, epsilon)


def test_builtin_activations_still_work():
    x = torch.linspace(-3, 3, 13)
    for name in hf_activations.ACT2CLS:
        if hf_gem.is_gem_name(name):
            continue
        module = hf_activations.ACT2FN[name]
        assert isinstance(module, torch.nn.Module)
        if name not in ("prelu", "xielu"):
            assert torch.isfinite(module(x)).all(), name
    torch.testing.assert_close(hf_activations.ACT2FN["gelu"](x), torch.nn.functional.gelu(x))


def test_unknown_name_is_a_value_error_and_a_key_error():
    with pytest.raises(KeyError) as error:
        hf_activations.ACT2FN["gelu_nwe"]
    assert isinstance(error.value, ValueError)
    assert "Did you mean 'gelu_new'" in str(error.value)
    assert "segem[_n<N>][_eps<e>]" in str(error.value)
    assert "gelu_nwe" not in hf_activations.ACT2FN
    with pytest.raises(KeyError):
        hf_activations.get_activation("gelu_nwe")


def test_registering_twice_is_harmless():
    def raw_entries():
        return [(k, dict.__getitem__(hf_activations.ACT2FN, k)) for k in hf_activations.ACT2FN]

    before = raw_entries()
    integration.register()
    importlib.reload(hf_gem)
    assert type(hf_activations.ACT2FN) is integration.GemAwareClassInstantier
    assert raw_entries() == before
    assert type(hf_activations.ACT2FN["gem_n2"]) is GEM


TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, vocab_size=64, head_dim=16)


def _tiny_config(model_type):
    if model_type == "gpt2":
        return transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)
    if model_type == "bert":
        return transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, vocab_size=64)
    if model_type == "t5":
        return transformers.T5Config(d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16,
                                     vocab_size=64)
    if model_type == "gemma3":
        return transformers.Gemma3Config(text_config=transformers.Gemma3TextConfig(**TINY))
    config_class = transformers.CONFIG_MAPPING[model_type]
    return config_class(**TINY)


@pytest.mark.parametrize(
    "model_type",
    ["gpt2", "bert", "llama", "mistral", "qwen2", "gemma", "gemma2", "gemma3_text", "t5"],
)
def test_patch_config_reaches_the_module_the_model_builds(model_type):
    config = hf_gem.patch_config(_tiny_config(model_type), "segem_n2_eps0.5")
    model = transformers.AutoModel.from_config(config)
    found = [m for m in model.modules() if isinstance(m, GemActivation)]
    assert found, f"no GEM module in a {model_type} model after patch_config"
    assert all((m.variant, m.order, m.epsilon) == ("segem", 2, 0.5) for m in found)


def test_patch_config_descends_into_the_text_config():
    config = hf_gem.patch_config(_tiny_config("gemma3"), "gem_n2")
    assert config.text_config.hidden_activation == "gem_n2"


def test_patch_config_errors():
    with pytest.raises(ValueError, match="model type 'opt'"):
        hf_gem.patch_config(transformers.OPTConfig(), "gem")
    config = _tiny_config("gpt2")
    with pytest.raises(ValueError, match="N \\(the order\\)"):
        hf_gem.patch_config(config, "gem_n0")
    assert config.activation_function == "gelu_new"  # nothing changed


def _train_a_few_steps(model, input_ids):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("family,name", [("gpt2", "gem_n2"), ("bert", "egem_eps10")])
def test_models_with_gem_train_save_and_reload(family, name, tmp_path):
    torch.manual_seed(0)
    config = hf_gem.patch_config(_tiny_config(family), name)
    model_class = (transformers.GPT2LMHeadModel if family == "gpt2"
                   else transformers.BertForMaskedLM)
    model = model_class(config)
    input_ids = torch.randint(0, 64, (4, 16))
    losses = _train_a_few_steps(model, input_ids)
    assert losses[-1] < losses[0] - 0.1

    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    reloaded = model_class.from_pretrained(tmp_path)
    assert integration.get_activation_name(reloaded.config) == name
    model.eval(), reloaded.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids).logits, reloaded(input_ids).logits)


def test_swap_activations_on_a_built_gpt2(tmp_path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(_tiny_config("gpt2"))
    swapped = hf_gem.swap_activations(model, "gem_n2")
    assert swapped == 1  # one MLP
    assert model.config.activation_function == "gem_n2"
    assert isinstance(model.transformer.h[0].mlp.act, GEM)
    input_ids = torch.randint(0, 64, (2, 8))
    model.save_pretrained(tmp_path)
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(model.eval()(input_ids).logits, reloaded.eval()(input_ids).logits)


def test_swap_activations_leaves_the_bert_pooler_alone():
    model = transformers.BertModel(_tiny_config("bert"))
    swapped = hf_gem.swap_activations(model, "egem_eps10")
    assert swapped == 1
    assert isinstance(model.pooler.activation, torch.nn.Tanh)
    assert model.config.hidden_act == "egem_eps10"


def test_swap_activations_on_a_plain_module():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4),
                                torch.nn.GELU(), torch.nn.Tanh())
    assert hf_gem.swap_activations(model, "segem") == 2
    assert [type(m).__name__ for m in model] == ["Linear", "SEGEM", "Linear", "SEGEM", "Tanh"]
    with pytest.raises(ValueError, match="no activation modules"):
        hf_gem.swap_activations(torch.nn.Linear(2, 2), "gem")
