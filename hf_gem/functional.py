"""The GEM formulas: the gate, the three activations and their first two derivatives.

For t >= 0 the gate is the log-logistic CDF with shape 2N and scale epsilon^(1/(2N)):

    F(t) = t^(2N) / (t^(2N) + epsilon)

    E-GEM(x)  = x F(x) for x > 0, else 0          (GEM is E-GEM with epsilon = 1)
    SE-GEM(x) = x (1 + sign(x) F(|x|)) / 2

Both F and its complement 1 - F are evaluated in forms that stay finite for every input
(F = 1 / (1 + epsilon / u) and 1 - F = 1 / (1 + u / epsilon) with u = t^(2N)), and the
complement is never computed by subtraction, which would lose every digit near F = 1.
float16 and bfloat16 inputs are computed in float32 and cast back, as PyTorch does for GELU.

These functions are plain tensor code: the reference for the kernels and the formulas the
autograd Function in ``autograd.py`` uses for its backward pass.
"""

from __future__ import annotations

import torch

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the formulas run in: float32 for 16-bit floats, the input's dtype otherwise."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _power(magnitude: torch.Tensor, order: int) -> torch.Tensor:
    """u = t^(2N); overflows to +inf for large t, which the gate forms below handle."""
    return magnitude.square() if order == 1 else magnitude.pow(2 * order)


def log_logistic_cdf(magnitude: torch.Tensor, order: int, epsilon: float) -> torch.Tensor:
    """F(t) = 1 / (1 + epsilon / t^(2N)) for t >= 0: 0 at t = 0, 1 at t = +inf."""
    return torch.reciprocal(1.0 + epsilon / _power(magnitude, order))


def log_logistic_sf(magnitude: torch.Tensor, order: int, epsilon: float) -> torch.Tensor:
    """1 - F(t) = 1 / (1 + t^(2N) / epsilon), exact where F is close to 1."""
    return torch.reciprocal(1.0 + _power(magnitude, order) / epsilon)


def _gate_pair(magnitude, order, epsilon):
    return log_logistic_cdf(magnitude, order, epsilon), log_logistic_sf(magnitude, order, epsilon)


def _in_compute_dtype(function):
    """Run ``function(x, ...)`` in float32 for 16-bit inputs and cast the result back."""

    def wrapper(x: torch.Tensor, order: int = 1, epsilon: float = 1.0) -> torch.Tensor:
        work = x.to(compute_dtype(x.dtype))
        return function(work, order, epsilon).to(x.dtype)

    wrapper.__name__ = function.__name__
    wrapper.__qualname__ = function.__qualname__
    wrapper.__doc__ = function.__doc__
    return wrapper


# ---------------------------------------------------------------------------------------------
# E-GEM (and GEM, which is E-GEM with epsilon = 1)


@_in_compute_dtype
def egem(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4) -> torch.Tensor:
    """E-GEM_{N,epsilon}(x) = x F(x) for x > 0, 0 otherwise. NaN stays NaN; -inf gives 0."""
    positive = torch.clamp_min(x, 0.0)  # clamp keeps NaN
    return positive * log_logistic_cdf(positive, order, epsilon)


@_in_compute_dtype
def egem_derivative(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4) -> torch.Tensor:
    """d/dx E-GEM = F (1 + 2N (1 - F)) for x > 0, 0 otherwise (exactly 0 at x = 0)."""
    positive = torch.clamp_min(x, 0.0)
    cdf, sf = _gate_pair(positive, order, epsilon)
    return cdf * (1.0 + (2 * order) * sf)


@_in_compute_dtype
def egem_second_derivative(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4):
    """d2/dx2 E-GEM = F'(x) (1 + 2N (1 - 2F)) for x > 0, 0 otherwise.

    That is twice the SE-GEM curvature at the same point, so both share one helper.
    """
    return 2.0 * _curvature(torch.clamp_min(x, 0.0), order, epsilon)


def gem(x: torch.Tensor, order: int = 1) -> torch.Tensor:
    """GEM_N(x) = E-GEM_{N,1}(x)."""
    return egem(x, order, 1.0)


# ---------------------------------------------------------------------------------------------
# SE-GEM


@_in_compute_dtype
def segem(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4) -> torch.Tensor:
    """SE-GEM_{N,epsilon}(x) = x (1 + sign(x) F(|x|)) / 2.

    x is halved first so that x (1 + F) cannot overflow near the largest finite value; the
    negative branch uses the exact complement, x (1 - F) / 2.
    """
    half = 0.5 * x
    cdf, sf = _gate_pair(x.abs(), order, epsilon)
    value = torch.where(x >= 0, half * (1.0 + cdf), half * sf)
    # At -inf the complement is exactly 0 and -inf * 0 would be NaN; the limit is 0.
    return torch.where(x == float("-inf"), torch.zeros_like(value), value)


@_in_compute_dtype
def segem_derivative(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4) -> torch.Tensor:
    """d/dx SE-GEM = 1/2 + sign(x) (F/2 + N F (1 - F)), F = F(|x|); 1/2 at x = 0.

    The negative branch is written (1 - F)(1/2 - N F) so that it keeps its digits as F -> 1.
    """
    cdf, sf = _gate_pair(x.abs(), order, epsilon)
    positive_branch = 0.5 + cdf * (0.5 + order * sf)
    negative_branch = sf * (0.5 - order * cdf)
    return torch.where(x >= 0, positive_branch, negative_branch)


@_in_compute_dtype
def segem_second_derivative(x: torch.Tensor, order: int = 1, epsilon: float = 1e-4):
    """d2/dx2 SE-GEM = F'(|x|) (1/2 + N (1 - 2F)), an even function of x."""
    return _curvature(x.abs(), order, epsilon)


def _curvature(magnitude: torch.Tensor, order: int, epsilon: float) -> torch.Tensor:
    """F'(t) (1/2 + N ((1 - F) - F)) for t >= 0, where F'(t) = 2N F (1 - F) / t.

    F'(t) has the limit 0 at t = 0 (F ~ t^(2N) there), which the division cannot give.
    """
    cdf, sf = _gate_pair(magnitude, order, epsilon)
    slope = (2 * order) * cdf * sf / magnitude
    slope = torch.where(magnitude == 0, torch.zeros_like(slope), slope)
    return slope * (0.5 + order * (sf - cdf))


# ---------------------------------------------------------------------------------------------
# Dispatch by variant name, so callers holding a GemSpec need no branches of their own.

FORWARD = {"gem": egem, "egem": egem, "segem": segem}
DERIVATIVE = {"gem": egem_derivative, "egem": egem_derivative, "segem": segem_derivative}
SECOND_DERIVATIVE = {
    "gem": egem_second_derivative,
    "egem": egem_second_derivative,
    "segem": segem_second_derivative,
}


def activation(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    """Evaluate any member of the family by variant name ("gem", "egem" or "segem")."""
    return FORWARD[variant](x, order, epsilon)


def derivative(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    return DERIVATIVE[variant](x, order, epsilon)


def second_derivative(x: torch.Tensor, variant: str, order: int, epsilon: float) -> torch.Tensor:
    return SECOND_DERIVATIVE[variant](x, order, epsilon)
