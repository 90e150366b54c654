"""Image classifiers for the GEM family, registered in timm's model registry.

Importing this package (``import hf_gem`` does it) registers:

    cifar_resnet20, cifar_resnet32, cifar_resnet44, cifar_resnet56, cifar_resnet110
        the CIFAR ResNets of He et al. (2016) for 32x32 colour images
    mnist_cnn
        a small CNN for 28x28 grey images (it accepts smaller ones, down to 4x4)

so that ``timm.create_model("cifar_resnet56", act_layer="segem_eps1e-4", num_classes=100)``
works. Every activation in these models comes from ``act_layer``.
"""

from __future__ import annotations

from .cifar_resnet import CIFAR_DEPTHS, CifarResNet
from .pretrained import load_pretrained, read_config, save_pretrained
from .small_cnn import SmallCnn

MODEL_NAMES = tuple(f"cifar_resnet{depth}" for depth in CIFAR_DEPTHS) + ("mnist_cnn",)

__all__ = [
    "CIFAR_DEPTHS", "MODEL_NAMES", "CifarResNet", "SmallCnn",
    "load_pretrained", "read_config", "save_pretrained",
]
