"""GEM names in timm's activation factories and model builders."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.layers import create_act_layer, get_act_fn, get_act_layer

import hf_gem  # noqa: F401  (registers the names)
from hf_gem.modules import EGEM, GEM, SEGEM, GemActivation


def test_create_model_uses_segem_everywhere():
    model = timm.create_model("resnet18", act_layer="segem_eps1e-4", num_classes=10)
    activations = [m for m in model.modules() if isinstance(m, GemActivation)]
    assert len(activations) == 17  # stem + two per BasicBlock, 8 blocks
    assert all(type(m) is SEGEM and m.epsilon == 1e-4 and m.order == 1 for m in activations)
    assert not [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    "name,cls,order,epsilon",
    [("gem", GEM, 1, 1.0), ("gem_n3", GEM, 3, 1.0), ("egem_n2_eps0.125", EGEM, 2, 0.125),
     ("SE-GEM_eps1e-6", SEGEM, 1, 1e-6)],
)
def test_get_act_layer_resolves_any_valid_name(name, cls, order, epsilon):
    layer = create_act_layer(name, inplace=True)
    assert type(layer) is cls and (layer.order, layer.epsilon) == (order, epsilon)
    assert type(get_act_layer(name)(inplace=False)) is cls
    x = torch.linspace(-2, 2, 9)
    torch.testing.assert_close(get_act_fn(name)(x), layer(x))


def test_builtin_timm_names_still_work_and_typos_are_explained():
    assert get_act_layer("relu") is torch.nn.ReLU
    assert get_act_layer("gelu") is not None
    with pytest.raises(KeyError) as error:
        get_act_layer("segme")
    assert "Did you mean 'segem'" in str(error.value)
    with pytest.raises(ValueError, match="epsilon"):
        get_act_layer("segem_eps0")
    with pytest.raises(ValueError, match="gated"):
        get_act_layer("gem_n2_glu")


def test_install_has_a_matching_torch_and_torchvision():
    import torchvision
    from transformers.models.gpt2 import GPT2LMHeadModel  # noqa: F401

    assert torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5).tolist() == [0]
