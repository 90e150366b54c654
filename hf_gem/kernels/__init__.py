"""Fused kernels for the GEM family and the dispatcher that picks a path per tensor."""

from .dispatch import apply_activation

__all__ = ["apply_activation"]
