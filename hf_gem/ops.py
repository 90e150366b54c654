"""Differentiable functional forms: ``hf_gem.gem(x, order=2)`` and friends.

These check their parameters and go through the dispatcher (fused kernels where available,
memory-efficient autograd everywhere). The raw formulas are in ``functional.py``.
"""

from __future__ import annotations

import torch

from .kernels.dispatch import apply_activation
from .names import DEFAULT_EPSILON, GemSpec


def gem(x: torch.Tensor, order: int = 1) -> torch.Tensor:
    """GEM_N(x): x F(x) for x > 0 with F(t) = t^(2N) / (t^(2N) + 1), else 0."""
    spec = GemSpec("gem", order, 1.0)
    return apply_activation(x, spec.variant, spec.order, spec.epsilon)


def egem(x: torch.Tensor, order: int = 1, epsilon: float = DEFAULT_EPSILON) -> torch.Tensor:
    """E-GEM_{N,eps}(x): x F(x) for x > 0 with F(t) = t^(2N) / (t^(2N) + eps), else 0."""
    spec = GemSpec("egem", order, epsilon)
    return apply_activation(x, spec.variant, spec.order, spec.epsilon)


def segem(x: torch.Tensor, order: int = 1, epsilon: float = DEFAULT_EPSILON) -> torch.Tensor:
    """SE-GEM_{N,eps}(x) = x (1 + sign(x) F(|x|)) / 2."""
    spec = GemSpec("segem", order, epsilon)
    return apply_activation(x, spec.variant, spec.order, spec.epsilon)
