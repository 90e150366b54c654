"""A small CNN for MNIST-class images: 28x28 grey digits or clothes, and smaller ones.

Three 3x3 conv-BN-act layers of 32, 64 and 64 channels, the first two followed by 2x2 max
pooling, then adaptive average pooling to a 3x3 grid, a hidden linear layer of 128 units
with the same activation, dropout and the classifier: 131 k parameters and 5.7 M
multiply-adds per 28x28 image, so that a pass over Fashion-MNIST takes minutes on a CPU.
The grid keeps where in the image a feature was found (a global average would not, and
costs Fashion-MNIST several points of accuracy), while adaptive pooling lets the model
take any input of at least 4x4 pixels, scikit-learn's 8x8 digits included. Every
activation comes from ``act_layer``.
"""

from __future__ import annotations

import torch
from timm.layers import SelectAdaptivePool2d, get_act_layer
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

STAGE_WIDTHS = (32, 64, 64)
POOLED_GRID = 3  # the last feature map is average-pooled to 3x3 cells
HIDDEN_UNITS = 128


def conv_bn_act(in_channels: int, out_channels: int, act_layer) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        act_layer(inplace=True),
    )


class SmallCnn(nn.Module):
    """conv-pool, conv-pool, conv, pool to a 3x3 grid, hidden layer, classifier."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        act_layer="relu",
        global_pool: str = "avg",
        drop_rate: float = 0.25,
    ):
        super().__init__()
        act_layer = get_act_layer(act_layer)
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.num_features = STAGE_WIDTHS[-1]
        self.head_hidden_size = HIDDEN_UNITS

        stages, in_channels = [], in_chans
        for index, width in enumerate(STAGE_WIDTHS):
            layers = [conv_bn_act(in_channels, width, act_layer)]
            if index < len(STAGE_WIDTHS) - 1:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.feature_info = [
            dict(num_chs=32, reduction=2, module="stages.0"),
            dict(num_chs=64, reduction=4, module="stages.1"),
            dict(num_chs=64, reduction=4, module="stages.2"),
        ]

        self.global_pool = self._pool(global_pool)
        self.hidden = nn.Linear(self._pooled_width(), HIDDEN_UNITS)
        self.hidden_act = act_layer(inplace=True)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(HIDDEN_UNITS, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def _pool(pool_type: str) -> SelectAdaptivePool2d:
        return SelectAdaptivePool2d(output_size=POOLED_GRID, pool_type=pool_type, flatten=True)

    def _pooled_width(self) -> int:
        return self.num_features * self.global_pool.feat_mult() * POOLED_GRID ** 2

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier; a new pooling type also resets the hidden layer it feeds."""
        self.num_classes = num_classes
        if global_pool is not None and global_pool != self.global_pool.pool_type:
            self.global_pool = self._pool(global_pool)
            self.hidden = nn.Linear(self._pooled_width(), HIDDEN_UNITS)
        self.fc = nn.Linear(HIDDEN_UNITS, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.hidden_act(self.hidden(self.global_pool(x))))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs({
    "mnist_cnn": dict(
        num_classes=10, input_size=(1, 28, 28), pool_size=(7, 7), crop_pct=1.0,
        interpolation="bilinear", mean=(0.1307,), std=(0.3081,),
        first_conv="stages.0.0.0", classifier="fc", license="apache-2.0",
    ),
})


@register_model
def mnist_cnn(pretrained: bool = False, **kwargs) -> SmallCnn:
    """The small CNN for 28x28 grey images (131 k parameters)."""
    return build_model_with_cfg(
        SmallCnn, "mnist_cnn", pretrained,
        feature_cfg=dict(out_indices=(0, 1, 2), flatten_sequential=True), **kwargs,
    )
