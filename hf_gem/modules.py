"""``nn.Module`` forms of GEM, E-GEM and SE-GEM, and of the fused GEM-GLU and Linear + GEM.

Parameters are checked when the module is built, never at its first forward. Every module
accepts and ignores ``inplace`` so that timm's model builders, which call
``act_layer(inplace=True)``, can use it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels.dispatch import apply_activation, apply_bias_activation, apply_gated_activation
from .names import DEFAULT_EPSILON, GemSpec, format_epsilon, parse_name


class GemActivation(nn.Module):
    """Any member of the family, described by a :class:`~hf_gem.names.GemSpec`."""

    def __init__(self, spec: GemSpec, inplace: bool = False):
        super().__init__()
        self.spec = spec
        # Read by the dispatcher on every call; kept as plain attributes for speed.
        self.variant, self.order, self.epsilon = spec.variant, spec.order, spec.epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_activation(x, self.variant, self.order, self.epsilon)

    @property
    def smoothness_order(self) -> int:
        return self.spec.smoothness_order

    def extra_repr(self) -> str:
        if self.variant == "gem":
            return f"N={self.order}"
        return f"N={self.order}, epsilon={format_epsilon(self.epsilon)}"


class GEM(GemActivation):
    """GEM_N(x) = x * x^(2N) / (x^(2N) + 1) for x > 0, else 0. C^(2N) at 0."""

    def __init__(self, order: int = 1, inplace: bool = False):
        super().__init__(GemSpec("gem", order, 1.0), inplace)


class EGEM(GemActivation):
    """E-GEM_{N,eps}(x) = x * x^(2N) / (x^(2N) + eps) for x > 0, else 0; -> ReLU as eps -> 0."""

    def __init__(self, order: int = 1, epsilon: float = DEFAULT_EPSILON, inplace: bool = False):
        super().__init__(GemSpec("egem", order, epsilon), inplace)


class SEGEM(GemActivation):
    """SE-GEM_{N,eps}(x) = x (1 + sign(x) F(|x|)) / 2: no dead neurons, C^(2N) junction."""

    def __init__(self, order: int = 1, epsilon: float = DEFAULT_EPSILON, inplace: bool = False):
        super().__init__(GemSpec("segem", order, epsilon), inplace)


class GemGLU(GemActivation):
    """GEM-GLU: act(a) * b in one fused pass, for any variant ("gem", "egem", "segem").

    Called with one tensor, a and b are the first and second halves of its last dimension
    (as ``torch.nn.GLU`` splits them), so the output's last dimension is half the input's.
    Called as ``glu(gate, up)`` with two tensors of one shape, as a Llama-style MLP has
    them, it returns act(gate) * up. Autograd saves the inputs only.
    """

    def __init__(self, variant: str = "gem", order: int = 1, epsilon: float | None = None,
                 inplace: bool = False):
        if epsilon is None:
            epsilon = 1.0 if variant == "gem" else DEFAULT_EPSILON
        super().__init__(GemSpec(variant, order, epsilon, gated=True), inplace)

    def forward(self, x: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
        if up is None:
            if x.dim() == 0 or x.shape[-1] % 2:
                raise ValueError(
                    f"GEM-GLU splits the last dimension into two halves, so it must be even; "
                    f"got an input of shape {tuple(x.shape)}"
                )
            x, up = x.chunk(2, dim=-1)  # views: the kernel reads both halves in place
        return apply_gated_activation(x, up, self.variant, self.order, self.epsilon)

    def extra_repr(self) -> str:
        return f"variant={self.variant}, {super().extra_repr()}"


class GemLinear(nn.Linear):
    """``act(x W^T + b)``: a Linear layer and a GEM activation, the bias added in the kernel.

    Same parameters and state dict as ``nn.Linear``. The matrix product runs without its
    bias and the activation kernel adds it while reading the product, which saves a pass
    over the output where the matrix product would otherwise add the bias separately.
    """

    def __init__(self, in_features: int, out_features: int, spec: GemSpec, bias: bool = True,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if spec.gated:
            raise ValueError("GemLinear takes a plain activation; use GemGLU for the gated form")
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parameters = (self.spec.variant, self.spec.order, self.spec.epsilon)
        product = F.linear(x, self.weight)
        if self.bias is None:
            return apply_activation(product, *parameters)
        return apply_bias_activation(product, self.bias, *parameters)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.spec.name}"


_CLASSES = {"gem": GEM, "egem": EGEM, "segem": SEGEM}


def module_for_spec(spec: GemSpec) -> GemActivation:
    """A module of the variant's own class (GEM, EGEM, SEGEM, or GemGLU) for ``spec``."""
    if spec.gated:
        return GemGLU(spec.variant, spec.order, spec.epsilon)
    if spec.variant == "gem":
        return GEM(spec.order)
    return _CLASSES[spec.variant](spec.order, spec.epsilon)


def activation_from_name(name: str) -> GemActivation:
    """Build the module a GEM-family name describes, e.g. ``activation_from_name("gem_n2")``."""
    return module_for_spec(parse_name(name))
