"""``nn.Module`` forms of GEM, E-GEM and SE-GEM.

Parameters are checked when the module is built, never at its first forward. Every module
accepts and ignores ``inplace`` so that timm's model builders, which call
``act_layer(inplace=True)``, can use it directly.
"""

from __future__ import annotations

import torch
from torch import nn

from .kernels.dispatch import apply_activation
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


_CLASSES = {"gem": GEM, "egem": EGEM, "segem": SEGEM}


def module_for_spec(spec: GemSpec) -> GemActivation:
    """A module of the variant's own class (GEM, EGEM or SEGEM) for ``spec``."""
    if spec.variant == "gem":
        return GEM(spec.order)
    return _CLASSES[spec.variant](spec.order, spec.epsilon)


def activation_from_name(name: str) -> GemActivation:
    """Build the module a GEM-family name describes, e.g. ``activation_from_name("gem_n2")``."""
    return module_for_spec(parse_name(name))
