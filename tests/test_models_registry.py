"""The CIFAR ResNets and the small CNN: timm registration, shapes, sizes, activations."""

from __future__ import annotations

import subprocess
import sys

import pytest
import timm
import torch
from torch import nn

import hf_gem
from hf_gem.models import CIFAR_DEPTHS, MODEL_NAMES
from hf_gem.models.cifar_resnet import ZeroPadShortcut


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_import_hf_gem_alone_registers_the_models():
    code = ("import hf_gem, timm; m = timm.create_model('cifar_resnet56', "
            "act_layer='segem_eps1e-4', num_classes=100); print(m.num_classes, m.act1)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "100" and "SEGEM" in done.stdout


def test_every_model_is_in_timms_registry():
    assert set(MODEL_NAMES) <= set(timm.list_models())
    assert timm.list_models("cifar_resnet*") == [f"cifar_resnet{d}" for d in CIFAR_DEPTHS]


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_every_depth_builds_and_classifies(depth):
    model = timm.create_model(f"cifar_resnet{depth}", act_layer="segem_eps1e-4", num_classes=100)
    blocks = len(model.layer1) + len(model.layer2) + len(model.layer3)
    assert blocks == 3 * (depth - 2) // 6
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_parameter_counts_match_the_paper():
    # He et al. (2016), table 6: ResNet-56 has 0.85 M parameters and ResNet-110 1.7 M.
    counts = {
        depth: parameter_count(timm.create_model(f"cifar_resnet{depth}", num_classes=10))
        for depth in (20, 56, 110)
    }
    assert counts == {20: 269_722, 56: 853_018, 110: 1_727_962}
    assert round(counts[56] / 1e6, 2) == 0.85
    assert round(counts[110] / 1e6, 1) == 1.7


def test_shortcuts_are_parameter_free_zero_padding():
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(1, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (1, 32, 4, 4)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0


@pytest.mark.parametrize(
    "name, expected_activations",
    [("cifar_resnet20", 1 + 2 * 9), ("cifar_resnet56", 1 + 2 * 27), ("mnist_cnn", 3 + 1)],
)
def test_every_activation_comes_from_act_layer(name, expected_activations):
    model = timm.create_model(name, act_layer="egem_n2_eps1e-3")
    gem_layers = [m for m in model.modules() if isinstance(m, hf_gem.GemActivation)]
    assert len(gem_layers) == expected_activations
    assert all((m.variant, m.order, m.epsilon) == ("egem", 2, 1e-3) for m in gem_layers)
    assert not any(isinstance(m, (nn.ReLU, nn.GELU, nn.SiLU)) for m in model.modules())


def test_default_activation_is_relu_as_in_the_paper():
    model = timm.create_model("cifar_resnet20")
    assert isinstance(model.act1, nn.ReLU)


def test_small_cnn_takes_mnist_and_digit_sizes():
    model = timm.create_model("mnist_cnn", act_layer="gem").eval()
    assert model.pretrained_cfg["input_size"] == (1, 28, 28)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert parameter_count(model) == 131_050


def test_in_chans_and_timm_classifier_interface():
    model = timm.create_model("cifar_resnet20", in_chans=1, num_classes=5)
    assert model.conv1.in_channels == 1
    features = model.forward_features(torch.randn(2, 1, 32, 32))
    assert features.shape == (2, 64, 8, 8)
    assert model.forward_head(features, pre_logits=True).shape == (2, 64)
    model.reset_classifier(7)
    assert model.get_classifier().out_features == 7
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


def test_features_only_returns_each_stage():
    model = timm.create_model("cifar_resnet20", features_only=True)
    shapes = [tuple(f.shape) for f in model(torch.randn(1, 3, 32, 32))]
    assert shapes == [(1, 16, 32, 32), (1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8)]


def test_bad_activation_or_depth_fails_at_construction():
    with pytest.raises(ValueError, match="segem"):
        timm.create_model("cifar_resnet20", act_layer="segme")
    with pytest.raises(ValueError, match="epsilon"):
        timm.create_model("mnist_cnn", act_layer="egem_eps-1")
    with pytest.raises(ValueError, match="6n \\+ 2"):
        hf_gem.models.CifarResNet(depth=21)
