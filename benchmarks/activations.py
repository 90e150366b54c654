"""CPU benchmark: the GEM family against F.gelu, F.silu and F.relu, side by side in one run.

Prints, for float32 tensors (8M elements by default), the median time of the forward pass
and of forward + backward, each as a ratio to F.gelu measured in the same run, and the bytes
autograd saves per call (measured with saved-tensor hooks).

    python benchmarks/activations.py [--numel 8388608] [--threads N] [--names gem gem_n2 ...]

The GEM rows use the core package's eager path by default (``--backend eager``); pass
``--backend compiled`` for the torch.compile-fused CPU path (benchmarks/kernel_bandwidth.py
compares all paths side by side).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils import benchmark

import hf_gem
from hf_gem.kernels import set_backend

DEFAULT_NAMES = ["gem", "gem_n2", "egem_eps1e-4", "segem_eps1e-4", "segem_n2_eps1e-4"]
BASELINES = {"F.gelu": F.gelu, "F.silu": F.silu, "F.relu": F.relu}


def saved_bytes_per_call(function, x: torch.Tensor) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(x)
    return total


def median_seconds(statement: str, env: dict, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt=statement, globals=env, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def measure(functions: dict, numel: int, min_run_time: float) -> dict:
    x = torch.randn(numel, dtype=torch.float32)
    x_grad = x.clone().requires_grad_(True)
    grad_output = torch.randn_like(x)
    results = {}
    for label, function in functions.items():
        env = {"f": function, "x": x, "xg": x_grad, "g": grad_output, "torch": torch}
        forward = median_seconds("f(x)", env, min_run_time)
        both = median_seconds("torch.autograd.grad(f(xg), xg, g)", env, min_run_time)
        results[label] = (forward, both, saved_bytes_per_call(function, x_grad))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--names", nargs="+", default=DEFAULT_NAMES)
    parser.add_argument("--min_run_time", type=float, default=1.0, help="seconds per timing")
    parser.add_argument("--backend", default="eager", help="GEM path: eager, compiled or auto")
    args = parser.parse_args()
    set_backend(args.backend)
    if args.threads:
        torch.set_num_threads(args.threads)

    functions = dict(BASELINES)
    for name in args.names:
        functions[name] = hf_gem.activation_from_name(name)
    results = measure(functions, args.numel, args.min_run_time)

    gelu_forward, gelu_both, _ = results["F.gelu"]
    print(f"float32, {args.numel:,} elements, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, GEM backend {args.backend}")
    print(f"{'activation':<20}{'fwd ms':>9}{'fwd/gelu':>10}{'fwd+bwd ms':>12}"
          f"{'fwd+bwd/gelu':>14}{'saved bytes':>14}")
    for label, (forward, both, saved) in results.items():
        print(f"{label:<20}{forward * 1e3:>9.2f}{forward / gelu_forward:>10.2f}"
              f"{both * 1e3:>12.2f}{both / gelu_both:>14.2f}{saved:>14,}")
    print(f"input bytes: {args.numel * 4:,}")


if __name__ == "__main__":
    main()
