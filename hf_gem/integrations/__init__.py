"""Glue between the GEM core and the libraries that look activations up by name."""

from __future__ import annotations

import importlib.util


def register_all() -> list:
    """Register the GEM family with every supported library that is installed.

    Returns the names of the libraries registered. Safe to call any number of times.
    """
    registered = []
    if importlib.util.find_spec("transformers") is not None:
        from . import transformers as transformers_integration

        transformers_integration.register()
        registered.append("transformers")
    if importlib.util.find_spec("timm") is not None:
        from . import timm as timm_integration

        timm_integration.register()
        registered.append("timm")
    return registered
