"""The CIFAR ResNets of He et al. (2016), "Deep Residual Learning", section 4.2.

A 3x3 stem of 16 channels, then three stages of ``n`` basic blocks with 16, 32 and 64
channels (the second and third halve the resolution), global average pooling and one linear
layer: depth = 6n + 2, so 20, 32, 44, 56 and 110 layers. As in the paper, a shortcut that
changes shape keeps the input's even pixels and pads the new channels with zeros (option A),
so shortcuts add no parameters: ResNet-56 has 0.85 M parameters and ResNet-110 1.7 M.

Every activation comes from ``act_layer`` (a timm name such as ``"relu"`` or any GEM-family
name such as ``"segem_eps1e-4"``, or a module class), so one architecture serves every
activation that is compared.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import ClassifierHead, DropPath, get_act_layer
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
STAGE_WIDTHS = (16, 32, 64)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A of the paper: subsample by ``stride`` and append zero channels; no weights."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class BasicBlock(nn.Module):
    """conv-BN-act, conv-BN, add the shortcut, act."""

    def __init__(self, in_channels, out_channels, stride, act_layer, drop_path_rate=0.0):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = act_layer(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.act2 = act_layer(inplace=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(self.drop_path(out) + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet of depth 6n + 2 for 32x32 images, with timm's classifier interface."""

    def __init__(
        self,
        depth: int = 56,
        num_classes: int = 10,
        in_chans: int = 3,
        act_layer="relu",
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"a CIFAR ResNet needs depth = 6n + 2 with n >= 1, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        act_layer = get_act_layer(act_layer)
        self.depth, self.num_classes, self.in_chans = depth, num_classes, in_chans
        self.num_features = self.head_hidden_size = STAGE_WIDTHS[-1]
        self.drop_rate = drop_rate

        self.conv1 = conv3x3(in_chans, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.act1 = act_layer(inplace=True)

        # Stochastic depth grows linearly from 0 at the first block to drop_path_rate.
        total_blocks = 3 * blocks_per_stage
        block_index, in_channels, stages = 0, STAGE_WIDTHS[0], []
        for stage_index, width in enumerate(STAGE_WIDTHS):
            blocks = []
            for position in range(blocks_per_stage):
                stride = 2 if stage_index > 0 and position == 0 else 1
                rate = drop_path_rate * block_index / max(total_blocks - 1, 1)
                blocks.append(BasicBlock(in_channels, width, stride, act_layer, rate))
                in_channels, block_index = width, block_index + 1
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_info = [
            dict(num_chs=16, reduction=1, module="act1"),
            dict(num_chs=16, reduction=1, module="layer1"),
            dict(num_chs=32, reduction=2, module="layer2"),
            dict(num_chs=64, reduction=4, module="layer3"),
        ]

        self.head = ClassifierHead(self.num_features, num_classes, global_pool, drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation, as in the paper.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**overrides) -> dict:
    cfg = dict(
        num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8), crop_pct=1.0,
        interpolation="bilinear", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        first_conv="conv1", classifier="head.fc", license="apache-2.0",
    )
    cfg.update(overrides)
    return cfg


# No published weights: these entries only carry the input settings the models expect.
default_cfgs = generate_default_cfgs({f"cifar_resnet{depth}": _cfg() for depth in CIFAR_DEPTHS})


def _create(depth: int, pretrained: bool = False, **kwargs) -> CifarResNet:
    return build_model_with_cfg(
        partial(CifarResNet, depth), f"cifar_resnet{depth}", pretrained,
        feature_cfg=dict(out_indices=(0, 1, 2, 3)), **kwargs,
    )


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-20 (3 blocks per stage, 0.27 M parameters)."""
    return _create(20, pretrained, **kwargs)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-32 (5 blocks per stage, 0.46 M parameters)."""
    return _create(32, pretrained, **kwargs)


@register_model
def cifar_resnet44(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-44 (7 blocks per stage, 0.66 M parameters)."""
    return _create(44, pretrained, **kwargs)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-56 (9 blocks per stage, 0.85 M parameters), the paper's CIFAR model."""
    return _create(56, pretrained, **kwargs)


@register_model
def cifar_resnet110(pretrained: bool = False, **kwargs) -> CifarResNet:
    """CIFAR ResNet-110 (18 blocks per stage, 1.7 M parameters)."""
    return _create(110, pretrained, **kwargs)
