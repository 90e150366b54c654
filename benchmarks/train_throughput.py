"""Training tokens per second with a GEM-family activation against GELU, in one process.

    python benchmarks/train_throughput.py                       # GPT-2 tiny: gem_n2 vs gelu_new
    python benchmarks/train_throughput.py --recipe bert --activations egem_eps10 gelu
    python benchmarks/train_throughput.py --model_size 124m --block_size 256 --batch_size 4

Each measurement is one full optimizer update as the training loop does it (forward,
backward, gradient clipping, AdamW step) on the recipe's own data and model, at the recipe's
default batch and block size unless flags say otherwise. The activations take turns in
rounds (A B B A ...), so a machine that gets busier or quieter during the run affects both
alike; the medians over rounds and their ratio are printed. This is a benchmark, not a test:
on a machine shared with other work the figures move from run to run, and the spread across
rounds is printed so that can be judged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Python puts this script's folder first on the path, and benchmarks/kernel_bandwidth.py would then
# stand in for the `kernels` package that transformers looks for; drop the folder.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import torch  # noqa: E402

from hf_gem.training.data import load_text_splits, tokenize_and_pack  # noqa: E402
from hf_gem.training.language_models import FAMILIES, build_model  # noqa: E402
from hf_gem.training.tokenizer import train_bpe_tokenizer  # noqa: E402

DEFAULT_ACTIVATIONS = {"gpt2": ("gem_n2", "gelu_new"), "bert": ("egem_eps10", "gelu")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(FAMILIES), default="gpt2")
    parser.add_argument("--model_size", default="tiny")
    parser.add_argument("--activations", nargs=2, metavar=("GEM", "BASELINE"),
                        help="default: gem_n2 gelu_new (gpt2), egem_eps10 gelu (bert)")
    parser.add_argument("--block_size", type=int, help="default: the preset's")
    parser.add_argument("--batch_size", type=int, help="default: the preset's")
    parser.add_argument("--vocab_size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10, help="updates per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates per model")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    return parser.parse_args(argv)


def make_batches(family, tokenizer, block_size, batch_size, count):
    """``count`` batches of real blocks from the default corpus (the masked-LM collator for
    BERT), reused by every model so that all of them see the same input."""
    from transformers import DataCollatorForLanguageModeling, default_data_collator

    blocks = tokenize_and_pack(load_text_splits(), tokenizer, block_size, family.objective)
    rows = blocks["train"]
    collate = default_data_collator
    if family.objective == "masked":
        collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    batches = []
    for index in range(count):
        start = (index * batch_size) % max(1, len(rows) - batch_size)
        batches.append(collate([rows[i] for i in range(start, start + batch_size)]))
    return batches


def timed_updates(model, optimizer, batches) -> float:
    """Seconds for one update per batch, as the loop does it."""
    started = time.perf_counter()
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    family = FAMILIES[args.recipe]
    preset = family.presets[args.model_size]
    block_size = args.block_size or preset.block_size
    batch_size = args.batch_size or preset.batch_size
    activations = args.activations or DEFAULT_ACTIVATIONS[args.recipe]
    texts = load_text_splits()["train"]["text"]
    positions = preset.config[family.positions_field]
    tokenizer = train_bpe_tokenizer(texts, args.vocab_size, family.objective, positions)
    batches = make_batches(family, tokenizer, block_size, batch_size, args.steps)
    models = {}
    for name in activations:
        torch.manual_seed(0)
        model = build_model(family, args.model_size, name, tokenizer, block_size).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        timed_updates(model, optimizer, batches[: args.warmup])  # first calls compile / warm
        models[name] = (model, optimizer)
    tokens = args.steps * batch_size * block_size
    rates = {name: [] for name in activations}
    for round_index in range(args.rounds):
        order = activations if round_index % 2 == 0 else activations[::-1]
        for name in order:
            rates[name].append(tokens / timed_updates(*models[name], batches))
    gem, baseline = activations
    ratios = [a / b for a, b in zip(rates[gem], rates[baseline])]
    median = {name: statistics.median(values) for name, values in rates.items()}
    parameters = sum(p.numel() for p in models[gem][0].parameters())
    print(f"{family.model_class.__name__} --model_size {args.model_size}: {parameters:,} "
          f"parameters, batch {batch_size} x {block_size} tokens, {args.steps} updates x "
          f"{args.rounds} rounds, {torch.get_num_threads()} threads, "
          f"HF_GEM_BACKEND={os.environ.get('HF_GEM_BACKEND', 'auto')}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name in activations:
        values = ", ".join(f"{value:.0f}" for value in rates[name])
        print(f"  {name:>12}: median {median[name]:8.0f} tokens/s   (rounds: {values})")
    print(f"  {gem} / {baseline}: {median[gem] / median[baseline]:.3f}x "
          f"(per-round ratios {min(ratios):.3f} to {max(ratios):.3f})")


if __name__ == "__main__":
    main()
