"""Choose how an activation is computed for a given tensor.

Every module and integration calls :func:`apply_activation`; this is the one place that
decides between the eager formulas and any faster path.
"""

from __future__ import annotations

import torch

from ..autograd import gem_activation


def apply_activation(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    """act(x) for the GEM-family member (variant, N, epsilon), differentiable in x."""
    return gem_activation(x, variant, order, epsilon)
