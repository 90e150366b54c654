"""Which implementation computes the GEM operations, and how that choice is forced.

Backends (``HF_GEM_BACKEND`` environment variable, or :func:`set_backend`):

``auto`` (default)
    CUDA tensors: the Triton kernels. CPU tensors: the eager formulas at first; once the
    process has computed ``COMPILE_AFTER_ELEMENTS`` elements eagerly in calls of at least
    ``COMPILED_MIN_ELEMENTS`` elements, such calls switch to the ``torch.compile``-fused
    formulas (when a C++ compiler is present). Compiling costs seconds, so only a run that
    has shown itself long enough to repay it compiles; tests and short runs never do.
``eager``
    The eager formulas of the core package everywhere: the reference for debugging.
``compiled``
    The ``torch.compile``-fused formulas for every tensor, on any device.
``triton``
    The Triton kernels for every tensor. CPU tensors then run through Triton's interpreter,
    a slow path meant for testing the kernels on machines without a GPU.

float64 is never a kernel dtype: it always takes the eager formulas. When Triton is missing
or a kernel or a compilation fails, the call falls back to the eager formulas and one
warning says why; later calls go straight to the fallback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings

import torch

BACKENDS = ("auto", "eager", "compiled", "triton")
ENVIRONMENT_VARIABLE = "HF_GEM_BACKEND"
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# The automatic CPU choice compiles only calls of at least this many elements (below it the
# eager formulas take milliseconds and the call overhead of the compiled path matters) ...
COMPILED_MIN_ELEMENTS = 1 << 20
# ... and only after the process has computed this many elements eagerly in such calls.
# Measured in `make train` (300 updates of the tiny GPT-2, 8M elements per update): with a
# threshold of 2^29 it compiled at update ~100, and the compilation's minute of slow updates
# cost more than the faster path then saved. 2^33 keeps that default run eager and still
# compiles a 124M GPT-2 on CPU within its first ~15 updates.
COMPILE_AFTER_ELEMENTS = 1 << 33

_state = {
    "backend": "auto", "disabled": set(), "warned": set(), "modules": {}, "eager_elements": 0,
}


def warn_once(key: str, message: str) -> None:
    """Emit ``message`` as a RuntimeWarning the first time ``key`` is seen in this process."""
    if key in _state["warned"]:
        return
    _state["warned"].add(key)
    warnings.warn(f"hf_gem: {message}", RuntimeWarning, stacklevel=3)


def _read_environment() -> str:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        warn_once(
            "environment",
            f"{ENVIRONMENT_VARIABLE}={value!r} is not one of {', '.join(BACKENDS)}; using 'auto'",
        )
        return "auto"
    return value


def set_backend(name: str) -> str:
    """Force how GEM activations are computed; returns the previous backend.

    ``name`` is one of ``auto``, ``eager``, ``compiled``, ``triton`` (see the module docs).
    Setting a backend also clears earlier failures, so a fixed setup can be retried.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    previous = _state["backend"]
    _state["backend"] = name
    _state["disabled"].clear()
    return previous


def get_backend() -> str:
    """The backend in force: ``auto``, ``eager``, ``compiled`` or ``triton``."""
    return _state["backend"]


def disable(path: str, error: BaseException) -> None:
    """Stop using ``path`` ("triton" or "compiled") after it failed, with one warning."""
    _state["disabled"].add(path)
    what = "a Triton kernel" if path == "triton" else "torch.compile of the fused formula"
    warn_once(
        f"failed-{path}",
        f"{what} failed ({type(error).__name__}: {error}); GEM activations use the eager "
        f"PyTorch formulas from now on in this process. Set {ENVIRONMENT_VARIABLE}=eager to "
        "silence this warning.",
    )


def triton_kernels(device_type: str):
    """The kernel launchers for this device type, or None where Triton cannot run.

    CUDA uses ``triton_kernels``; CPU uses a private copy of the same file loaded with
    ``TRITON_INTERPRET=1``, whose kernels run in Triton's interpreter.
    """
    key = "cuda" if device_type == "cuda" else "interpreter"
    if key not in _state["modules"]:
        _state["modules"][key] = _load_kernels(interpreted=key == "interpreter")
    return _state["modules"][key]


def _load_kernels(interpreted: bool):
    if importlib.util.find_spec("triton") is None:
        warn_once("no-triton", "Triton is not installed; GEM activations use the eager formulas")
        return None
    try:
        if not interpreted:
            from . import triton_kernels as module

            return module
        return _load_interpreted_copy()
    except Exception as error:  # an installed but broken Triton
        warn_once("no-triton", f"Triton failed to load ({error}); using the eager formulas")
        return None


def _load_interpreted_copy():
    # @triton.jit reads TRITON_INTERPRET when it decorates, so set it only while the private
    # copy is executed; the GPU kernels of the main module are not affected.
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        path = os.path.join(os.path.dirname(__file__), "triton_kernels.py")
        spec = importlib.util.spec_from_file_location("hf_gem.kernels._interpreted", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = previous
    return module


def interpreter_quiet(tensor: torch.Tensor):
    """Silence numpy's divide-by-zero notes while the interpreter runs a kernel on CPU.

    The gate divides by u = t^(2N), which is 0 at t = 0 by design (F = 1 / (1 + eps / 0) = 0).
    """
    if tensor.device.type == "cuda":
        return contextlib.nullcontext()
    import numpy

    return numpy.errstate(divide="ignore", over="ignore", invalid="ignore")


def operator_path(tensor: torch.Tensor) -> str:
    """How a custom operator computes on this tensor: "triton", "compiled" or "reference"."""
    backend, disabled = _state["backend"], _state["disabled"]
    if backend == "eager" or tensor.dtype not in KERNEL_DTYPES:
        return "reference"
    is_cuda = tensor.device.type == "cuda"
    wants_triton = backend == "triton" or (backend == "auto" and is_cuda)
    if wants_triton and "triton" not in disabled and triton_kernels(tensor.device.type):
        return "triton"
    wants_compiled = backend == "compiled" or (backend == "auto" and not is_cuda and _hot(tensor))
    if wants_compiled and "compiled" not in disabled and _compiled_possible(tensor):
        return "compiled"
    return "reference"


def _hot(tensor: torch.Tensor) -> bool:
    """True once large CPU calls have done enough eager work to repay a compilation."""
    elements = tensor.numel()
    if elements < COMPILED_MIN_ELEMENTS:
        return False
    if _state["eager_elements"] >= COMPILE_AFTER_ELEMENTS:
        return True
    _state["eager_elements"] += elements
    return False


def _compiled_possible(tensor: torch.Tensor) -> bool:
    from .compiled import compiler_available

    if tensor.device.type == "cpu" and not compiler_available():
        warn_once(
            "no-compiler",
            "no C++ compiler found for torch.compile on CPU; GEM activations use the eager "
            "formulas (install g++ or clang++ for the fused CPU path)",
        )
        return False
    return True


_state["backend"] = _read_environment()
