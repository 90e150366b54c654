"""GEM in timm: ``create_model(..., act_layer="segem_eps1e-4")`` and ``get_act_layer(name)``.

timm looks activation names up in module-level dicts of ``timm.layers.create_act`` at call
time. :func:`register` wraps those dicts (once) in mappings that also understand the GEM
grammar, so any valid name works, including parameterised ones never listed.
"""

from __future__ import annotations

import functools

from timm.layers import create_act

from ..modules import EGEM, GEM, SEGEM, GemActivation
from ..names import (
    ActivationNameError,
    is_gem_name,
    looks_like_gem_name,
    parse_name,
    unknown_name_error,
)

_CLASSES = {"gem": GEM, "egem": EGEM, "segem": SEGEM}


def layer_for_name(name: str):
    """A constructor for ``name`` that accepts timm's ``inplace=`` argument."""
    spec = parse_name(name)
    if spec.gated:
        raise ActivationNameError(
            f"{name!r} is a gated (GLU) form, which halves the channels; timm's act_layer "
            f"needs a plain activation such as {spec.name[:-len('_glu')]!r}"
        )
    kwargs = {"order": spec.order}
    if spec.variant != "gem":
        kwargs["epsilon"] = spec.epsilon
    return functools.partial(_CLASSES[spec.variant], **kwargs)


def function_for_name(name: str):
    """A plain function ``x -> act(x)`` for timm's ``get_act_fn``."""
    module = layer_for_name(name)()

    def activation(x, inplace: bool = False):
        return module(x)

    activation.__name__ = parse_name(name).name
    return activation


class _GemAwareTable(dict):
    """One of timm's name tables, answering GEM-family names as well."""

    def __init__(self, table: dict, factory):
        super().__init__(table)
        self._factory = factory

    def __contains__(self, key) -> bool:
        return super().__contains__(key) or is_gem_name(key)

    def __missing__(self, key):
        if not looks_like_gem_name(key):
            raise unknown_name_error(key, other_names=self.keys())
        return self._factory(key)  # parse_name raises a clear error for a bad N or epsilon


_TABLES = {
    "_ACT_LAYER_DEFAULT": layer_for_name,
    "_ACT_LAYER_ME": layer_for_name,
    "_ACT_FN_DEFAULT": function_for_name,
    "_ACT_FN_ME": function_for_name,
}


def register() -> None:
    """Make timm's activation factories resolve GEM names. Safe to call repeatedly."""
    for table_name, factory in _TABLES.items():
        table = getattr(create_act, table_name, None)
        if table is None or isinstance(table, _GemAwareTable):
            continue
        setattr(create_act, table_name, _GemAwareTable(table, factory))
    from .. import models  # noqa: F401  registers cifar_resnet* and mnist_cnn (once per process)


__all__ = ["register", "layer_for_name", "function_for_name", "GemActivation"]
