"""Fail fast when a flag asks for the Hugging Face Hub and there is no network.

Without this check, ``load_dataset`` and ``from_pretrained`` retry for 25 to 50 seconds on a
machine without network before they give up. Here a three-second connection test decides;
when it fails, a name already in the local cache is still loaded (in offline mode), and any
other name stops the run with a message that says the network is needed and what to do.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from urllib.parse import urlparse


class NetworkRequiredError(RuntimeError):
    """A flag names something on the Hub, and the Hub cannot be reached."""


def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """None when the Hub answers; otherwise why not (offline mode set, or no connection)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set)"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", constants.ENDPOINT))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"{host} cannot be reached ({error})"
    return None


@contextmanager
def hub_offline_mode():
    """Make huggingface_hub, datasets and transformers use the local cache only, for a while."""
    from huggingface_hub import constants

    modules = [constants]
    try:
        import datasets.config

        modules.append(datasets.config)
    except ImportError:
        pass
    previous = [module.HF_HUB_OFFLINE for module in modules]
    for module in modules:
        module.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for module, value in zip(modules, previous):
            module.HF_HUB_OFFLINE = value


def load_from_hub(flag: str, name: str, load, fallback: str):
    """``load()`` (which fetches ``name`` from the Hub), failing fast when there is no network.

    ``flag`` and ``fallback`` make the message: which option asked for the Hub and what the
    user can do instead.
    """
    reason = hub_unreachable_reason()
    if reason is None:
        return load()
    try:
        with hub_offline_mode():
            return load()
    except Exception as error:  # not cached: every library raises its own kind here
        raise NetworkRequiredError(
            f"{flag} {name}: this needs the network to download from the Hugging Face Hub, "
            f"and {reason}; it is not in the local cache either ({type(error).__name__}). "
            f"Run once with network access so that it is cached, or {fallback}."
        ) from None
