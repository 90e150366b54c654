"""Benchmark of the GEM kernels against the eager paths and GELU, side by side in one run.

On a CUDA device it first measures the device's copy bandwidth (read + write of a large
tensor), then, for bfloat16 and float32 tensors of 256M elements, prints the achieved GB/s
and the fraction of copy bandwidth of the GEM forward and backward computed by the Triton
kernel, by the eager path, by ``torch.compile`` of the eager formulas, and of ``F.gelu``.
Last, it times forward + backward of a GPT-2 124M MLP block (768 -> 3072 -> 768) with GEM
fused (bias + GEM in one kernel), GEM through the activation registry (kernel and eager),
``gelu_new`` and ``F.gelu``.

On a CPU it prints the same table for the CPU paths (eager, fused by ``torch.compile``,
``F.gelu``) at 8M float32 elements, with the forward + backward time of each as a ratio to
``F.gelu``.

    python benchmarks/kernel_bandwidth.py                     # CUDA when present, else CPU
    python benchmarks/kernel_bandwidth.py --device cpu --elements 8388608 --name gem_n2

Minimum traffic is counted: the forward reads x and writes y (2 tensors), the backward reads
grad_output and x and writes grad_x (3 tensors). All candidates are timed in alternating
rounds and the median is reported, so a busy machine affects each of them alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# Python puts this script's folder first on sys.path, where this file would shadow the
# `kernels` package that transformers imports; drop the folder before importing anything.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hf_gem  # noqa: E402
from hf_gem import eager, functional  # noqa: E402
from hf_gem.kernels import apply_activation, set_backend  # noqa: E402
from hf_gem.kernels import compiled, custom_ops  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(candidates: dict, device: torch.device, rounds: int, warmup: int = 2) -> dict:
    """Median seconds per call of each candidate, measured in alternating rounds."""
    for function in candidates.values():
        for _ in range(warmup):
            function()
    synchronize(device)
    samples = {label: [] for label in candidates}
    for _ in range(rounds):
        for label, function in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            samples[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in samples.items()}


def copy_bandwidth(elements: int, device: torch.device, rounds: int) -> float:
    """Bytes per second of ``y.copy_(x)`` in float32 (counting the read and the write)."""
    source = torch.randn(elements, device=device)
    target = torch.empty_like(source)
    seconds = median_times({"copy": lambda: target.copy_(source)}, device, rounds)["copy"]
    return 2 * source.numel() * source.element_size() / seconds


def path_functions(spec, x: torch.Tensor, grad_output: torch.Tensor) -> dict:
    """label -> (forward, backward) callables for each way of computing GEM, and F.gelu."""
    parameters = (spec.variant, spec.order, spec.epsilon)
    paths = {
        "eager (core)": (
            lambda: eager.activation(x, *parameters),
            lambda: eager.gradient(grad_output, x, *parameters),
        ),
        "eager formulas (whole tensor)": (
            lambda: functional.activation(x, *parameters),
            lambda: (grad_output * functional.derivative(x, *parameters)),
        ),
        "torch.compile of eager formulas": (
            lambda: compiled.run("activation", x, *parameters),
            lambda: compiled.run("activation_backward", grad_output, x, *parameters),
        ),
        "F.gelu": (
            lambda: F.gelu(x),
            lambda: torch.ops.aten.gelu_backward(grad_output, x),
        ),
    }
    if x.is_cuda:
        paths["Triton kernel"] = (
            lambda: custom_ops.activation(x, *parameters),
            lambda: custom_ops.activation_backward(grad_output, x, *parameters),
        )
    return paths


def bandwidth_table(spec, dtype, elements, device, rounds, copy_bytes_per_second) -> dict:
    x = torch.randn(elements, dtype=dtype, device=device)
    grad_output = torch.randn_like(x)
    tensor_bytes = x.numel() * x.element_size()
    paths = path_functions(spec, x, grad_output)
    candidates = {}
    for label, (forward, backward) in paths.items():
        candidates[(label, "forward")] = forward
        candidates[(label, "backward")] = backward
    times = median_times(candidates, device, rounds)

    size = f"{elements:,} elements ({tensor_bytes / 2**20:,.0f} MiB)"
    print(f"\n{spec.display_name}, {dtype}, {size}")
    print(f"{'path':<34}{'pass':<10}{'ms':>9}{'GB/s':>9}{'of copy':>9}")
    for (label, direction), seconds in times.items():
        moved = (2 if direction == "forward" else 3) * tensor_bytes
        rate = moved / seconds
        print(f"{label:<34}{direction:<10}{seconds * 1e3:>9.2f}{rate / 1e9:>9.1f}"
              f"{rate / copy_bytes_per_second:>9.0%}")
    return times


def autograd_table(spec, elements, device, rounds) -> dict:
    """Forward + backward through autograd, float32, each path forced by the backend."""
    x = torch.randn(elements, device=device, requires_grad=True)
    grad_output = torch.randn_like(x)
    parameters = (spec.variant, spec.order, spec.epsilon)

    def through_backend(name):
        return with_backend(
            name, lambda: torch.autograd.grad(apply_activation(x, *parameters), x, grad_output)
        )

    candidates = {"F.gelu": lambda: torch.autograd.grad(F.gelu(x), x, grad_output)}
    candidates["GEM eager (core)"] = through_backend("eager")
    candidates["GEM fused (torch.compile)"] = through_backend("compiled")
    if device.type == "cuda":
        candidates["GEM Triton kernel"] = through_backend("triton")
    times = median_times(candidates, device, rounds)

    print(f"\nforward + backward through autograd, {spec.display_name}, float32, "
          f"{elements:,} elements")
    print(f"{'path':<34}{'ms':>9}{'/ F.gelu':>10}")
    for label, seconds in times.items():
        print(f"{label:<34}{seconds * 1e3:>9.2f}{seconds / times['F.gelu']:>10.2f}")
    return times


# ---------------------------------------------------------------------------------------------
# GPT-2 124M MLP block: c_fc (768 -> 3072), activation, c_proj (3072 -> 768).


def gpt2_mlp(activation_name: str, device, dtype):
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP

    config = GPT2Config(activation_function=activation_name, resid_pdrop=0.0)
    return GPT2MLP(4 * config.n_embd, config).to(device=device, dtype=dtype)


def with_backend(name: str, function):
    """``function`` run with the GEM backend forced to ``name``."""

    def run():
        previous = set_backend(name)
        try:
            return function()
        finally:
            set_backend(previous)

    return run


def mlp_table(spec, tokens, device, dtype, rounds) -> dict:
    from hf_gem.integrations.transformers import FusedBiasGemMLP

    torch.manual_seed(0)
    fast = "triton" if device.type == "cuda" else "compiled"
    blocks = {  # label -> (block, GEM backend or None)
        f"{spec.name} fused (bias + GEM, {fast})":
            (FusedBiasGemMLP(gpt2_mlp(spec.name, device, dtype)), fast),
        f"{spec.name} ({fast})": (gpt2_mlp(spec.name, device, dtype), fast),
        f"{spec.name} (eager)": (gpt2_mlp(spec.name, device, dtype), "eager"),
        "gelu_new": (gpt2_mlp("gelu_new", device, dtype), None),
        "F.gelu": (gpt2_mlp("gelu", device, dtype), None),
    }
    x = torch.randn(tokens, 768, device=device, dtype=dtype, requires_grad=True)
    grad_output = torch.randn(tokens, 768, device=device, dtype=dtype)

    def step(block, backend_name):
        def run():
            torch.autograd.grad(block(x), [x, *block.parameters()], grad_output)

        return run if backend_name is None else with_backend(backend_name, run)

    candidates = {label: step(*entry) for label, entry in blocks.items()}
    times = median_times(candidates, device, rounds)
    print(f"\nGPT-2 124M MLP block, forward + backward, {tokens:,} tokens, {dtype}")
    print(f"{'block':<40}{'ms':>9}{'/ F.gelu':>10}")
    for label, seconds in times.items():
        print(f"{label:<40}{seconds * 1e3:>9.2f}{seconds / times['F.gelu']:>10.2f}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--name", default="gem_n2", help="GEM-family name to benchmark")
    parser.add_argument("--elements", type=int, default=None,
                        help="elements per tensor (default: 256M on CUDA, 8M on CPU)")
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens for the MLP block (default: 8192 on CUDA, 512 on CPU)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per candidate (default: 20 on CUDA, 15 on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = parser.parse_args()

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    elements = args.elements or (256 * 2**20 if on_gpu else 8 * 2**20)
    tokens = args.tokens or (8192 if on_gpu else 512)
    rounds = args.rounds or (20 if on_gpu else 15)
    spec = hf_gem.parse_name(args.name)

    threads = f"CPU, {torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name(device) if on_gpu else threads
    print(f"hf-gem kernel benchmark: {where}; torch {torch.__version__}")
    bandwidth = copy_bandwidth(elements, device, rounds)
    print(f"copy bandwidth (float32, read + write): {bandwidth / 1e9:.1f} GB/s")

    dtypes = (torch.bfloat16, torch.float32) if on_gpu else (torch.float32,)
    for dtype in dtypes:
        bandwidth_table(spec, dtype, elements, device, rounds, bandwidth)
    autograd_table(spec, elements, device, rounds)
    mlp_dtype = torch.bfloat16 if on_gpu else torch.float32
    mlp_table(spec, tokens, device, mlp_dtype, rounds)


if __name__ == "__main__":
    main()
