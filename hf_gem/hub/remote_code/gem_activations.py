"""The GEM activation family (GEM, E-GEM, SE-GEM) for plain transformers, in one file.

This file travels with a published checkpoint so that people without the ``hf_gem``
package can load it with ``from_pretrained(..., trust_remote_code=True)``. It needs torch
and transformers only, and computes exactly what ``hf_gem`` computes, operation for
operation, so a model gives the same logits with either.

For t >= 0, an integer N >= 1 and epsilon > 0, the gate is the log-logistic CDF

    F(t) = t^(2N) / (t^(2N) + epsilon)

    E-GEM_{N,eps}(x)  = x F(x) for x > 0, else 0      (GEM_N is E-GEM with epsilon = 1)
    SE-GEM_{N,eps}(x) = x (1 + sign(x) F(|x|)) / 2

Activation names carry the parameters, as in a config's ``hidden_act``:
``gem[_n<N>]``, ``egem[_n<N>][_eps<e>]``, ``segem[_n<N>][_eps<e>]``; E-GEM and SE-GEM
default to epsilon = 1e-4. Unlike ``hf_gem``, the backward pass here supports first
derivatives only (enough for training and fine-tuning, not for double backward).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from transformers import activations

DEFAULT_EPSILON = 1e-4
_NAME_PATTERN = re.compile(
    r"^(?P<variant>segem|egem|gem)(?:_n(?P<order>\d+))?(?:_eps(?P<epsilon>.+))?$"
)


def parse_gem_name(name):
    """(variant, N, epsilon) for a GEM-family name, or None for any other string."""
    if not isinstance(name, str):
        return None
    text = name.strip().lower()
    for alias, canonical in (("se-gem", "segem"), ("e-gem", "egem")):
        if text.startswith(alias):
            text = canonical + text[len(alias):]
    match = _NAME_PATTERN.match(text)
    if match is None:
        return None
    variant = match["variant"]
    order = int(match["order"]) if match["order"] else 1
    epsilon = 1.0 if variant == "gem" else DEFAULT_EPSILON
    if match["epsilon"] is not None:
        if variant == "gem":
            return None
        try:
            epsilon = float(match["epsilon"])
        except ValueError:
            return None
    if order < 1 or not math.isfinite(epsilon) or epsilon <= 0.0:
        return None
    return variant, order, epsilon


# ---------------------------------------------------------------------------------------------
# The formulas, evaluated in the same sequence of correctly rounded operations as hf_gem's
# eager path, so that the results agree bit for bit. F and 1 - F use forms that stay finite
# for every input, and 1 - F is never computed by subtraction (that loses every digit where
# F is close to 1).


def _power(magnitude, order):
    """u = t^(2N) by repeated squaring (pow would round differently)."""
    square, result, exponent = magnitude.square(), None, order
    while exponent:
        if exponent & 1:
            result = square if result is None else result * square
        exponent >>= 1
        if exponent:
            square = square.square()
    return result


def _cdf(magnitude, order, epsilon):
    """F(t) = 1 / (1 + epsilon / t^(2N))."""
    return (_power(magnitude, order).reciprocal() * epsilon + 1.0).reciprocal()


def _gate(magnitude, order, epsilon):
    """F(t) and its complement 1 - F(t) = 1 / (1 + t^(2N) / epsilon)."""
    power = _power(magnitude, order)
    complement = (power / epsilon + 1.0).reciprocal()
    return (power.reciprocal() * epsilon + 1.0).reciprocal(), complement


def _branch_step(x):
    """1 for x > 0 and 0 for x < 0: blending with it selects a branch exactly."""
    return (torch.sign(x) + 1.0) * 0.5


def _forward(x, variant, order, epsilon):
    if variant != "segem":
        positive = torch.clamp_min(x, 0.0)  # clamp keeps NaN
        return positive * _cdf(positive, order, epsilon)
    cdf, complement = _gate(x.abs(), order, epsilon)
    # S = 1 + F for x > 0 and 1 - F for x < 0; SE-GEM = (x / 2) S, with x halved first so
    # that nothing overflows, and -inf clamped so that -inf * (1 - F = 0) gives 0, not NaN.
    gate = ((cdf + 1.0) - complement) * _branch_step(x) + complement
    return torch.clamp_min(x, -torch.finfo(x.dtype).max) * 0.5 * gate


def _derivative(x, variant, order, epsilon):
    if variant != "segem":
        cdf, complement = _gate(torch.clamp_min(x, 0.0), order, epsilon)
        return (complement * (2 * order) + 1.0) * cdf  # F (1 + 2N (1 - F))
    cdf, complement = _gate(x.abs(), order, epsilon)
    positive_branch = (complement * order + 0.5) * cdf + 0.5  # 1/2 + F (1/2 + N (1 - F))
    negative_branch = (cdf * -order + 0.5) * complement  # (1 - F)(1/2 - N F)
    return (positive_branch - negative_branch) * _branch_step(x) + negative_branch


def _compute_dtype(dtype):
    """16-bit inputs are computed in float32 and cast back, as PyTorch does for GELU."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _GemFunction(torch.autograd.Function):
    """act(x), saving only x; the backward pass uses the closed-form derivative.

    Differentiating the formula itself would give 0 * inf = NaN wherever x is exactly 0.
    """

    @staticmethod
    def forward(ctx, x, variant, order, epsilon):
        ctx.save_for_backward(x)
        ctx.parameters = (variant, order, epsilon)
        return _forward(x.to(_compute_dtype(x.dtype)), variant, order, epsilon).to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = _derivative(x.to(_compute_dtype(x.dtype)), *ctx.parameters)
        return (slope * grad_output).to(x.dtype).to(grad_output.dtype), None, None, None


class GemActivation(nn.Module):
    """One member of the GEM family, as an ``nn.Module``."""

    def __init__(self, variant="gem", order=1, epsilon=1.0):
        super().__init__()
        self.variant, self.order, self.epsilon = variant, int(order), float(epsilon)

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return _GemFunction.apply(x, self.variant, self.order, self.epsilon)
        work = x.to(_compute_dtype(x.dtype))
        return _forward(work, self.variant, self.order, self.epsilon).to(x.dtype)

    def extra_repr(self):
        return f"variant={self.variant}, N={self.order}, epsilon={self.epsilon!r}"


# ---------------------------------------------------------------------------------------------
# Registration with transformers' activation table.


def _strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings_in(item)


def register_activations_of(config):
    """Make every GEM-family name that ``config`` mentions resolvable through ACT2FN.

    Names that the table already knows (for example because ``hf_gem`` is installed and
    imported) are left alone. Returns the names added.
    """
    added = []
    for text in _strings_in(config.to_dict()):
        parameters = parse_gem_name(text)
        if parameters is None or text in activations.ACT2FN:
            continue
        variant, order, epsilon = parameters
        entry = (GemActivation, {"variant": variant, "order": order, "epsilon": epsilon})
        activations.ACT2FN[text] = entry
        activations.ACT2CLS.setdefault(text, entry)
        added.append(text)
    return added
