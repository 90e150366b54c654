"""The activation-name grammar of the GEM family, parsed in this one place.

A transformers config can only carry a string, so the parameters of an activation live in
its name::

    gem[_n<N>]              GEM,    N = 1 by default                 gem, gem_n2
    egem[_n<N>][_eps<e>]    E-GEM,  N = 1, epsilon = 1e-4 by default  egem_eps10
    segem[_n<N>][_eps<e>]   SE-GEM, N = 1, epsilon = 1e-4 by default  segem_n2_eps1e-4

Any of these may end in ``_glu`` (``gem_n2_glu``): the gated form GEM-GLU, act(a) * b, where
a and b are the two halves of the input's last dimension (as ``torch.nn.GLU`` splits it).

Names are case-insensitive and ``e-gem`` / ``se-gem`` are accepted for ``egem`` / ``segem``.
Every other module receives a :class:`GemSpec` (plain numbers) and never parses a name.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass
from typing import Iterable

VARIANTS = ("gem", "egem", "segem")
DISPLAY_NAMES = {"gem": "GEM", "egem": "E-GEM", "segem": "SE-GEM"}
DEFAULT_EPSILON = 1e-4

GRAMMAR_HELP = (
    "valid GEM-family names: gem[_n<N>] (e.g. gem, gem_n2), "
    "egem[_n<N>][_eps<e>] (e.g. egem_eps10, egem_n2_eps1e-4), "
    "segem[_n<N>][_eps<e>] (e.g. segem_eps1e-4); N is an integer >= 1 and <e> a positive "
    "finite number; a trailing _glu selects the gated form act(a) * b (e.g. gem_n2_glu)"
)

# Names that users are likely to mean; used to suggest the closest match after a typo.
EXAMPLE_NAMES = (
    "gem", "gem_n2", "gem_n3", "egem", "egem_eps10", "egem_n2", "egem_eps1e-4",
    "segem", "segem_eps1e-4", "segem_n2", "segem_n2_eps1e-4",
)

_NAME_PATTERN = re.compile(
    r"^(?P<variant>segem|egem|gem)(?:_n(?P<order>[^_]+))?(?:_eps(?P<epsilon>.+?))?"
    r"(?P<gated>_glu)?$"
)
_FAMILY_PREFIX = re.compile(r"^(s?e-?)?gem(_|$)")


class ActivationNameError(ValueError, KeyError):
    """An activation name that is unknown, or a GEM-family name with a bad N or epsilon.

    It is a ``KeyError`` too, because code written for ``ACT2FN[name]`` catches ``KeyError``.
    """

    def __str__(self) -> str:
        # KeyError would quote the message; show it as written.
        return str(self.args[0]) if self.args else ""


UnknownActivationError = ActivationNameError


@dataclass(frozen=True)
class GemSpec:
    """The parameters of one member of the family: variant, order N and epsilon.

    ``gated`` selects the GLU form act(a) * b over the two halves of the last dimension.
    """

    variant: str
    order: int = 1
    epsilon: float = 1.0
    gated: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        object.__setattr__(self, "order", check_order(self.order))
        object.__setattr__(self, "epsilon", check_epsilon(self.epsilon))
        object.__setattr__(self, "gated", bool(self.gated))
        if self.variant == "gem" and self.epsilon != 1.0:
            raise ValueError(
                f"GEM has epsilon = 1 by definition (got epsilon={self.epsilon}); "
                "use E-GEM ('egem_eps<e>') for another epsilon"
            )

    @property
    def smoothness_order(self) -> int:
        """The activation is C^(2N) at 0 and not C^(2N+1)."""
        return 2 * self.order

    @property
    def name(self) -> str:
        """The canonical name, which parses back to this spec."""
        parts = [self.variant]
        if self.order != 1:
            parts.append(f"n{self.order}")
        if self.variant != "gem" and self.epsilon != DEFAULT_EPSILON:
            parts.append(f"eps{format_epsilon(self.epsilon)}")
        if self.gated:
            parts.append("glu")
        return "_".join(parts)

    @property
    def display_name(self) -> str:
        suffix = "-GLU" if self.gated else ""
        text = f"{DISPLAY_NAMES[self.variant]}{suffix} (N={self.order}"
        if self.variant != "gem":
            text += f", epsilon={format_epsilon(self.epsilon)}"
        return text + ")"


def format_epsilon(epsilon: float) -> str:
    """Shortest round-tripping text: 1e-4 -> '1e-4', 10.0 -> '10', 0.25 -> '0.25'."""
    epsilon = float(epsilon)
    if 1e-3 <= abs(epsilon) < 1e6:
        text = repr(epsilon)
        return text[:-2] if text.endswith(".0") else text
    for digits in range(17):
        text = f"{epsilon:.{digits}e}"
        if float(text) == epsilon:
            break
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def _plain_number(value, parameter: str, expected: str):
    """A Python int or float from value: NumPy scalars and one-element tensors are accepted."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError(f"{parameter} must be {expected}, got {value!r} ({type(value).__name__})")
    if getattr(value, "ndim", 0) == 0 and hasattr(value, "item"):
        value = value.item()  # NumPy scalar, 0-d array or 0-d tensor
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueError(f"{parameter} must be {expected}, got {value!r} ({type(value).__name__})")


def check_order(order) -> int:
    """N must be an integer >= 1; raise a ValueError naming N otherwise."""
    expected = "an integer >= 1"
    value = _plain_number(order, "N (the order)", expected)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"N (the order) must be {expected}, got {order!r}")
    if int(value) < 1:
        raise ValueError(f"N (the order) must be {expected}, got {order!r}")
    return int(value)


def check_epsilon(epsilon) -> float:
    """epsilon must be a positive finite number; raise a ValueError naming epsilon otherwise."""
    expected = "a positive finite number"
    value = float(_plain_number(epsilon, "epsilon", expected))
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"epsilon must be {expected}, got {epsilon!r}")
    return value


def _normalise(name: str) -> str:
    text = name.strip().lower()
    for alias, canonical in (("se-gem", "segem"), ("e-gem", "egem")):
        if text.startswith(alias):
            text = canonical + text[len(alias):]
    return text


def looks_like_gem_name(name) -> bool:
    """True when the name starts like a GEM-family name (so a bad one deserves our error)."""
    return isinstance(name, str) and bool(_FAMILY_PREFIX.match(name.strip().lower()))


def is_gem_name(name) -> bool:
    """True when ``name`` is a valid GEM-family name."""
    if not looks_like_gem_name(name):
        return False
    try:
        parse_name(name)
    except ValueError:
        return False
    return True


def parse_name(name: str) -> GemSpec:
    """Turn a GEM-family name into a :class:`GemSpec`, or raise a ValueError saying why."""
    if not isinstance(name, str):
        raise ActivationNameError(f"an activation name must be a string, got {name!r}")
    match = _NAME_PATTERN.match(_normalise(name))
    if match is None:
        raise unknown_name_error(name)
    variant = match["variant"]
    order_text, epsilon_text = match["order"], match["epsilon"]
    if variant == "gem" and epsilon_text is not None:
        raise ActivationNameError(
            f"{name!r}: GEM has no epsilon (it is E-GEM with epsilon = 1); "
            f"did you mean 'egem_eps{epsilon_text}'? {GRAMMAR_HELP}"
        )
    order = 1
    if order_text is not None:
        if not order_text.isdigit():
            raise ActivationNameError(
                f"{name!r}: N (the order) must be an integer >= 1, got {order_text!r}"
            )
        order = int(order_text)
    epsilon = 1.0 if variant == "gem" else DEFAULT_EPSILON
    if epsilon_text is not None:
        try:
            epsilon = float(epsilon_text)
        except ValueError:
            raise ActivationNameError(
                f"{name!r}: epsilon must be a positive finite number, got {epsilon_text!r}"
            ) from None
    try:
        return GemSpec(variant, order, epsilon, gated=match["gated"] is not None)
    except ValueError as error:
        raise ActivationNameError(f"{name!r}: {error}") from None


def unknown_name_error(name, other_names: Iterable[str] = ()) -> UnknownActivationError:
    """An error for an unknown name that lists the valid forms and the closest match."""
    candidates = list(EXAMPLE_NAMES) + [str(other) for other in other_names]
    close = difflib.get_close_matches(str(name).lower(), candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    others = ""
    if other_names:
        others = f" Built-in activations: {', '.join(sorted(str(n) for n in other_names))}."
    return UnknownActivationError(
        f"Unknown activation {name!r}.{hint} {GRAMMAR_HELP}.{others}"
    )
