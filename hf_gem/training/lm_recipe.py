"""The command line and the run shared by the GPT-2 and BERT pretraining recipes.

``recipes/gpt2_pretrain.py`` and ``recipes/bert_pretrain.py`` call :func:`main` with their
model family; flags follow transformers' ``run_clm_no_trainer.py`` where it has one. Any flag
left out takes the value of the ``--model_size`` preset (see ``language_models.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from transformers import DataCollatorForLanguageModeling, default_data_collator, get_scheduler

import hf_gem

from ..hub import add_hub_arguments, check_hub_arguments, push_from_args
from .checkpoints import CheckpointError, resolve_checkpoint
from .data import load_text_splits, tokenize_and_pack
from .language_models import (
    EVALUATORS, FAMILIES, build_model, check_activation, describe_activation,
    language_model_loss,
)
from .loop import LoopSettings, TrainTask, train
from .network import NetworkRequiredError
from .sampling import make_eval_dataloader, make_train_dataloader
from .tokenizer import check_tokenizer, load_tokenizer, train_bpe_tokenizer

logger = get_logger("hf_gem.recipe")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "inverse_sqrt", "warmup_stable_decay")
ARGS_FILE = "training_args.json"


def build_parser(family) -> argparse.ArgumentParser:
    objective = "causal" if family.objective == "causal" else "masked"
    parser = argparse.ArgumentParser(
        description=f"Pretrain {family.name.upper()} ({objective} language modelling) with a "
        "GEM-family activation. With no flags it trains a tiny model on Python's bundled "
        "language reference, offline, in minutes on a CPU.")
    add = parser.add_argument
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", help="a Hub dataset or a dataset folder "
                      "(default: the offline Python language reference)")
    data.add_argument("--dataset_config_name", help="the dataset's configuration")
    data.add_argument("--train_file", help="a .txt, .json/.jsonl or .csv file to train on")
    data.add_argument("--validation_file", help="a file of the same kind to evaluate on")
    data.add_argument("--text_column_name", default="text",
                      help="the column holding the text (default: text)")
    data.add_argument("--validation_split_percentage", type=float, default=5,
                      help="share held out when the data has no validation split (default: 5)")
    data.add_argument("--block_size", type=int, help="tokens per training example")
    data.add_argument("--preprocessing_num_workers", type=int)
    data.add_argument("--overwrite_cache", action="store_true",
                      help="tokenise again instead of using the datasets cache")
    data.add_argument("--tokenizer_name", help="an existing tokenizer (Hub name or folder); "
                      "default: train a byte-level BPE on the training split")
    data.add_argument("--vocab_size", type=int, default=4096,
                      help="vocabulary of the trained tokenizer (default: 4096)")
    if family.objective == "masked":
        data.add_argument("--mlm_probability", type=float, default=0.15,
                          help="share of tokens masked (default: 0.15)")
    model = parser.add_argument_group("model")
    model.add_argument("--model_size", default="tiny", choices=sorted(family.presets),
                       help="; ".join(f"{name}: {preset.note}"
                                      for name, preset in family.presets.items()))
    model.add_argument("--activation", default=family.default_activation,
                       help="a GEM-family name (gem_n2, egem_eps10, segem_n2_eps1e-4, ...) or a "
                       f"transformers one (gelu_new, relu, ...); default: "
                       f"{family.default_activation}")
    model.add_argument("--dropout", type=float, help="dropout everywhere (default: the config's)")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--per_device_train_batch_size", type=int)
    optim.add_argument("--per_device_eval_batch_size", type=int)
    optim.add_argument("--learning_rate", type=float)
    optim.add_argument("--weight_decay", type=float, default=0.01)
    optim.add_argument("--max_grad_norm", type=float, default=1.0)
    optim.add_argument("--max_train_steps", type=int, help="optimizer updates (overrides "
                       "--num_train_epochs)")
    optim.add_argument("--num_train_epochs", type=float)
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--lr_scheduler_type", default="cosine", choices=SCHEDULERS)
    optim.add_argument("--num_warmup_steps", type=int)
    run = parser.add_argument_group("run")
    run.add_argument("--output_dir", default=f"runs/{family.name}-default")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--logging_steps", type=int, default=10)
    run.add_argument("--eval_steps", type=int, help="default: a quarter of the run")
    run.add_argument("--checkpointing_steps", type=int, help="default: --eval_steps")
    run.add_argument("--checkpoints_total_limit", type=int, default=3)
    run.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest'")
    run.add_argument("--with_tracking", action="store_true")
    run.add_argument("--report_to", default="all",
                     help="tensorboard, wandb, ... or all (with --with_tracking)")
    add("--project_name", default=f"hf-gem-{family.name}")
    add_hub_arguments(parser)
    return parser


def resolve_args(args, family):
    """Fill flags left out from the preset, and check the ones that need no data."""
    preset = family.presets[args.model_size]
    defaults = dict(block_size=preset.block_size, per_device_train_batch_size=preset.batch_size,
                    learning_rate=preset.learning_rate, num_warmup_steps=preset.warmup_steps)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.per_device_eval_batch_size is None:
        args.per_device_eval_batch_size = args.per_device_train_batch_size
    for name in ("block_size", "per_device_train_batch_size", "per_device_eval_batch_size",
                 "gradient_accumulation_steps", "logging_steps", "vocab_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    for name in ("max_train_steps", "eval_steps", "checkpointing_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.learning_rate <= 0:
        raise ValueError(f"--learning_rate must be positive, got {args.learning_rate}")
    check_activation(args.activation)
    return args


def _tokenizer(args, family, raw, resume_path, accelerator):
    """Reuse the checkpoint's tokenizer, load a named one, or train one on the main process."""
    positions = family.presets[args.model_size].config[family.positions_field]
    if resume_path is not None and (resume_path / "tokenizer_config.json").is_file():
        return load_tokenizer(str(resume_path)), f"saved with {resume_path}"
    if args.tokenizer_name:
        tokenizer = load_tokenizer(args.tokenizer_name)
        check_tokenizer(tokenizer, family.objective)
        return tokenizer, args.tokenizer_name
    folder = Path(args.output_dir)
    with accelerator.main_process_first():  # train once; the other processes load the copy
        if accelerator.is_main_process:
            tokenizer = train_bpe_tokenizer(raw["train"]["text"], args.vocab_size,
                                            family.objective, positions)
            tokenizer.save_pretrained(folder)
        else:
            tokenizer = load_tokenizer(str(folder))
    return tokenizer, f"byte-level BPE trained on the training split ({len(tokenizer)} tokens)"


def _optimizer(model, args):
    """AdamW without weight decay on biases and normalisation weights."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        plain = parameter.ndim < 2 or "norm" in name.lower() or "ln_" in name
        (no_decay if plain else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.learning_rate)


def _setup_logging(accelerator) -> None:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO)
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    # GPT-2 ties its output layer to its embedding; saving states that the tie is dropped
    # from the file (and restored on loading) at every checkpoint. That is expected here.
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    if accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_warning()
        transformers.utils.logging.set_verbosity_warning()
    else:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()


def _warn_if_cpus_are_busy(accelerator) -> None:
    """Several threads per process on CPUs that other work keeps busy run far slower than one
    (each parallel step waits for its slowest thread): 3 to 6 times slower per update was
    measured on a 2-core machine running other training jobs."""
    threads, cpus = torch.get_num_threads(), os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if accelerator.device.type == "cpu" and threads > 1 and busy > cpus:
        logger.warning(
            "The %d CPUs are busy with other work (load average %.1f) and this process uses %d "
            "threads; if training is slow, use one thread per process (accelerate launch "
            "--num_cpu_threads_per_process 1, or OMP_NUM_THREADS=1).", cpus, busy, threads)


# Flags that shape the training trajectory: a resumed run that changes one of them is no
# longer a continuation of the run it resumes, so the change is reported.
TRAJECTORY_FLAGS = (
    "activation", "model_size", "dataset_name", "dataset_config_name", "train_file",
    "tokenizer_name", "vocab_size", "block_size", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "weight_decay", "lr_scheduler_type",
    "num_warmup_steps", "max_train_steps", "seed",
)


def _warn_if_arguments_changed(args, resolved: dict) -> None:
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    try:
        saved = json.loads((checkpoint / ARGS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return  # an older checkpoint without its arguments: nothing to compare
    changed = [f"--{flag} {saved[flag]!r} -> {resolved.get(flag)!r}"
               for flag in TRAJECTORY_FLAGS if flag in saved and saved[flag] != resolved.get(flag)]
    if changed:
        logger.warning(
            "Resuming from %s with arguments that differ from the ones it was trained with "
            "(%s); the run will not repeat an uninterrupted one. Pass the original values to "
            "continue it exactly.", checkpoint, "; ".join(changed))


def _prepare(args, family, accelerator):
    """Everything before the loop: data, tokenizer, blocks, model, optimizer, loaders."""
    resume_path = None
    if args.resume_from_checkpoint:
        resume_path = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
    set_seed(args.seed)
    with accelerator.main_process_first():
        raw = load_text_splits(args.dataset_name, args.dataset_config_name, args.train_file,
                               args.validation_file, args.text_column_name,
                               args.validation_split_percentage)
    tokenizer, tokenizer_source = _tokenizer(args, family, raw, resume_path, accelerator)
    model = build_model(family, args.model_size, args.activation, tokenizer, args.block_size,
                        args.dropout)
    with accelerator.main_process_first():  # the others then read the datasets cache
        blocks = tokenize_and_pack(raw, tokenizer, args.block_size, family.objective,
                                   args.preprocessing_num_workers, args.overwrite_cache)
    for split, flag in (("train", "--train_file"), ("validation", "--validation_file")):
        if len(blocks[split]) == 0:
            raise ValueError(
                f"--block_size {args.block_size}: the {split} text is shorter than one block "
                f"of {args.block_size} tokens; lower --block_size or give more text "
                f"({flag} or --dataset_name).")
    global_batch = (args.per_device_train_batch_size * accelerator.num_processes
                    * args.gradient_accumulation_steps)
    if len(blocks["train"]) < args.per_device_train_batch_size * accelerator.num_processes:
        raise ValueError(
            f"--per_device_train_batch_size {args.per_device_train_batch_size}: the training "
            f"text gives only {len(blocks['train'])} blocks, fewer than one batch on "
            f"{accelerator.num_processes} process(es); lower the batch size or --block_size.")
    if args.max_train_steps is None:
        preset_steps = family.presets[args.model_size].max_train_steps
        args.max_train_steps = preset_steps if args.num_train_epochs is None else max(
            1, math.ceil(args.num_train_epochs * len(blocks["train"]) / global_batch))
    if args.eval_steps is None:
        args.eval_steps = max(1, args.max_train_steps // 4)
    if args.checkpointing_steps is None:
        args.checkpointing_steps = args.eval_steps
    if family.objective == "masked":
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mlm_probability)
        random_collation = True
    else:
        collator, random_collation = default_data_collator, False
    train_loader = make_train_dataloader(blocks["train"], args.per_device_train_batch_size,
                                         args.seed, collator,
                                         random_collation=random_collation)
    eval_loader = make_eval_dataloader(blocks["validation"], args.per_device_eval_batch_size,
                                       args.seed, collator, random_collation=random_collation)
    optimizer = _optimizer(model, args)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, args.num_warmup_steps,
                              args.max_train_steps)
    facts = {"tokenizer": tokenizer_source, "vocab_size_actual": len(tokenizer),
             "train_blocks": len(blocks["train"]), "validation_blocks": len(blocks["validation"]),
             "parameters": sum(p.numel() for p in model.parameters()),
             "num_processes": accelerator.num_processes, "hf_gem_version": hf_gem.__version__,
             "torch_version": torch.__version__, "transformers_version": transformers.__version__}
    return tokenizer, model, optimizer, scheduler, train_loader, eval_loader, blocks, facts


def main(family_name: str, argv=None) -> int:
    family = FAMILIES[family_name]
    parser = build_parser(family)
    args = parser.parse_args(argv)
    try:
        resolve_args(args, family)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    check_hub_arguments(args, parser)
    options = {"log_with": args.report_to, "project_dir": args.output_dir} if (
        args.with_tracking) else {}
    accelerator_api = getattr(torch, "accelerator", None)  # torch >= 2.6
    has_device = accelerator_api.is_available() if accelerator_api else torch.cuda.is_available()
    if not has_device:
        # Without cpu=True, Accelerate ignores torchrun's ranks on a machine with no GPU and
        # every process would train alone; with it, they form one gloo process group.
        options["cpu"] = True
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              **options)
    _setup_logging(accelerator)
    _warn_if_cpus_are_busy(accelerator)
    try:
        prepared = _prepare(args, family, accelerator)
    except (ValueError, CheckpointError, NetworkRequiredError, FileNotFoundError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    tokenizer, model, optimizer, scheduler, train_loader, eval_loader, blocks, facts = prepared
    resolved = {**vars(args), **facts}
    output_dir = Path(args.output_dir)
    if args.resume_from_checkpoint and accelerator.is_main_process:
        _warn_if_arguments_changed(args, resolved)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / ARGS_FILE).write_text(json.dumps(resolved, indent=2))

    def save_extra(folder):
        tokenizer.save_pretrained(folder)
        (Path(folder) / ARGS_FILE).write_text(json.dumps(resolved, indent=2))

    header = {
        "Training tokens": f"{len(blocks['train']) * args.block_size:,} "
                           f"({len(blocks['train']):,} blocks of {args.block_size})",
        "Activation": describe_activation(args.activation),
        "Model": f"{family.model_class.__name__}, --model_size {args.model_size}",
        "Tokenizer": facts["tokenizer"],
    }
    settings = LoopSettings(
        output_dir=args.output_dir, max_train_steps=args.max_train_steps,
        logging_steps=args.logging_steps, eval_steps=args.eval_steps,
        checkpointing_steps=args.checkpointing_steps,
        checkpoints_total_limit=args.checkpoints_total_limit,
        resume_from_checkpoint=args.resume_from_checkpoint, seed=args.seed,
        max_grad_norm=args.max_grad_norm, item_name="tokens",
        with_tracking=args.with_tracking, project_name=args.project_name,
        tracker_config={k: v for k, v in resolved.items()
                        if isinstance(v, (int, float, str, bool))},
        header=header,
    )
    task = TrainTask(compute_loss=language_model_loss, evaluate=EVALUATORS[family.objective],
                     save_extra=save_extra)
    try:
        result = train(accelerator, model, optimizer, scheduler, train_loader, eval_loader,
                       task, settings)
    except CheckpointError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    if result.stopped_by:
        logger.info("Stopped early by %s. Checkpoint: %s", result.stopped_by,
                    result.last_checkpoint)
    else:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.eval_metrics.items())
        logger.info("Done after %d steps (%s). Model and tokenizer: %s; metrics: %s",
                    result.completed_steps, shown, output_dir, output_dir / "metrics.jsonl")
    accelerator.end_training()
    if accelerator.is_main_process and not result.stopped_by:
        push_from_args(args, output_dir, parser=parser)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "gpt2", sys.argv[2:]))
