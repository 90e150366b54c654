"""The fused operations compiled by ``torch.compile``: one pass over memory per operation.

Eager PyTorch evaluates the GEM formula as a chain of elementwise operations, each reading
and writing a full tensor. Inductor turns the same expressions (``reference.py``) into a
single vectorised C++ loop on CPU (or one Triton kernel on a GPU), which reads the inputs
once and writes the outputs once.

Each (operation, variant, N, epsilon, dtype, device) is compiled once per process, with
dynamic sizes, so new sizes do not recompile. Compiling costs seconds (a forward and its
backward together: about 6 s with a warm Inductor cache on a 2-core machine, 30 s cold);
``dispatch`` only picks this path automatically for tensors large enough to repay it.
"""

from __future__ import annotations

import os
import shutil

import torch

from . import reference

_CACHE: dict = {}


def compiler_available() -> bool:
    """True when a C++ compiler that Inductor can use for CPU code is on the PATH."""
    candidates = (os.environ.get("CXX", ""), "g++", "c++", "clang++")
    return any(name and shutil.which(name) for name in candidates)


def _compile(kind: str, variant: str, order: int, epsilon: float):
    operation = getattr(reference, kind)

    def fused(*tensors):
        return operation(*tensors, variant, order, epsilon)

    # Dynamo keeps compiled graphs on the code object; a private code object for each
    # parameter set keeps the caches apart, so many (variant, N, epsilon, dtype) combinations
    # in one process never reach Dynamo's recompilation limit and silently fall back.
    fused.__code__ = fused.__code__.replace(co_name=f"gem_fused_{kind}")
    # Not dynamic=True: that would also make N symbolic and turn x^(2N) into a generic pow.
    # Only the tensor sizes are marked dynamic (in ``run``); N stays a constant, so Inductor
    # expands the power into multiplications.
    return torch.compile(fused, fullgraph=True)


def run(kind: str, *arguments):
    """Evaluate ``reference.<kind>`` through its compiled form; same arguments and results."""
    tensors = [value for value in arguments if isinstance(value, torch.Tensor)]
    variant, order, epsilon = arguments[len(tensors):]
    device_type = tensors[0].device.type
    key = (kind, variant, order, epsilon, tuple(t.dtype for t in tensors), device_type)
    fused = _CACHE.get(key)
    if fused is None:
        fused = _CACHE[key] = _compile(kind, variant, order, epsilon)

    if kind.startswith("bias"):
        # x (and grad_output) as (rows, columns), so the 1-D bias lines up with the columns
        *elementwise, bias = tensors
        flat = [tensor.reshape(-1, tensor.shape[-1]) for tensor in elementwise] + [bias]
    else:
        flat = [tensor.reshape(-1) for tensor in tensors]  # a view when already contiguous
    for tensor in flat:  # one graph for every size
        for dim in range(tensor.dim()):
            torch._dynamo.maybe_mark_dynamic(tensor, dim)
    with torch.no_grad():  # the operators' own autograd formulas handle gradients
        result = fused(*flat)

    inputs = tensors[1:] if kind.endswith("backward") else tensors  # skip grad_output
    if isinstance(result, tuple):  # the gated backward: (grad_gate, grad_up)
        return tuple(part.view(tensor.shape) for part, tensor in zip(result, inputs))
    return result.view(inputs[0].shape)
