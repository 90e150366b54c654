#!/usr/bin/env python
"""Train an image classifier with any activation, GEM-family or built in, in timm's manner.

    accelerate launch recipes/cnn_train.py                  # offline: scikit-learn's digits
    accelerate launch recipes/cnn_train.py --dataset cifar10 --model cifar_resnet56 \
        --activation segem_eps1e-4 --opt momentum --weight_decay 5e-4 --epochs 200

The model comes from timm's registry by name (``import hf_gem`` adds ``cifar_resnet20`` to
``cifar_resnet110`` and ``mnist_cnn``), the optimiser and the learning-rate schedule from
timm's factories, the data from the table in ``hf_gem.training.vision_data``, and the training
loop (Accelerate: devices, processes, mixed precision, checkpoints, resume) is the one every
hf-gem recipe shares. The output folder holds ``metrics.jsonl``, ``checkpoints/`` and the final
model (``model.safetensors`` and ``config.json``, loadable with
``hf_gem.models.load_pretrained``). Bad flags fail before training, naming the valid choices.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys

import timm
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from timm.layers import get_act_layer
from timm.optim import create_optimizer_v2, list_optimizers
from timm.scheduler import create_scheduler_v2

import hf_gem
from hf_gem.hub import add_hub_arguments, check_hub_arguments, push_from_args
from hf_gem.models import MODEL_NAMES
from hf_gem.training import CheckpointError, LoopSettings, make_eval_dataloader
from hf_gem.training import make_train_dataloader, train
from hf_gem.training.vision_data import IMAGE_DATASETS, DataError, ImageCollator
from hf_gem.training.vision_data import load_image_dataset
from hf_gem.training.vision_task import image_classification_task

logger = logging.getLogger("hf_gem.recipes.cnn_train")

SCHEDULES = ("cosine", "multistep", "step", "tanh", "poly", "constant", "none")
DEFAULT_ACTIVATION = "segem_eps1e-4"  # the paper's best CIFAR-10 ResNet-56 activation


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = parser
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a timm image classifier with a GEM-family (or any) activation.")
    data = parser.add_argument_group("data and model")
    data.add_argument("--dataset", default="digits",
                      help=f"one of {', '.join(IMAGE_DATASETS)} (default: digits, offline)")
    data.add_argument("--data_dir", default=None,
                      help="local copy of the dataset: IDX files (MNIST, Fashion-MNIST) or a "
                           "folder written by DatasetDict.save_to_disk")
    data.add_argument("--model", default=None,
                      help="a timm model name, e.g. cifar_resnet56 or mnist_cnn "
                           "(default: the dataset's own choice)")
    data.add_argument("--activation", default=DEFAULT_ACTIVATION,
                      help="any activation name timm knows: relu, gelu, gem, gem_n2, "
                           f"egem_eps1e-4, segem_eps1e-4, ... (default: {DEFAULT_ACTIVATION})")
    data.add_argument("--num_classes", type=int, default=None,
                      help="must equal the dataset's class count when given")
    data.add_argument("--max_train_samples", type=int, default=None,
                      help="train on the first N training images only (quick runs, tests)")
    data.add_argument("--max_eval_samples", type=int, default=None,
                      help="evaluate on the first N test images only")
    data.add_argument("--num_workers", type=int, default=0, help="data loader processes")

    optim = parser.add_argument_group("optimisation (timm's factories)")
    optim.add_argument("--epochs", type=int, default=None,
                       help="passes over the training data (default: per dataset)")
    optim.add_argument("--per_device_train_batch_size", "--batch_size", type=int, default=None,
                       help="default: per dataset (32 for digits, 128 otherwise)")
    optim.add_argument("--per_device_eval_batch_size", type=int, default=256)
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--opt", default="momentum",
                       help="a timm optimiser: momentum (SGD with classical momentum, as in "
                            "the paper), sgd (Nesterov), adamw, ... (default: momentum)")
    optim.add_argument("--learning_rate", "--lr", type=float, default=None,
                       help="peak learning rate (default: per dataset, 0.1 for CIFAR)")
    optim.add_argument("--momentum", type=float, default=0.9)
    optim.add_argument("--weight_decay", type=float, default=None,
                       help="default: per dataset (5e-4)")
    optim.add_argument("--sched", default="cosine", help=f"one of {', '.join(SCHEDULES)}")
    optim.add_argument("--sched_step", choices=("update", "epoch"), default="update",
                       help="change the learning rate after every update (default; smooth "
                            "even for runs of a few epochs) or once per epoch, as timm does")
    optim.add_argument("--decay_milestones", type=int, nargs="+", default=None,
                       help="multistep: epochs at which to multiply the rate by --decay_rate "
                            "(default: half and three quarters of --epochs, as in He et al.)")
    optim.add_argument("--decay_epochs", type=float, default=None,
                       help="step: decay every this many epochs (default: a third of --epochs)")
    optim.add_argument("--decay_rate", type=float, default=0.1)
    optim.add_argument("--warmup_epochs", type=int, default=0)
    optim.add_argument("--warmup_lr", type=float, default=1e-5)
    optim.add_argument("--min_lr", type=float, default=0.0)
    optim.add_argument("--label_smoothing", type=float, default=0.0)
    optim.add_argument("--drop_rate", type=float, default=None, help="classifier dropout")
    optim.add_argument("--drop_path_rate", type=float, default=None,
                       help="stochastic depth (CIFAR ResNets)")
    optim.add_argument("--max_grad_norm", type=float, default=None,
                       help="clip gradients to this norm (default: no clipping)")

    run = parser.add_argument_group("run")
    run.add_argument("--output_dir", default=None, help="default: runs/cnn-<dataset>")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--logging_steps", type=int, default=20)
    run.add_argument("--eval_steps", type=int, default=None,
                     help="evaluate every N updates (default: every epoch)")
    run.add_argument("--checkpointing_steps", default="epoch",
                     help="save a checkpoint every N updates, 'epoch', or 'none'")
    run.add_argument("--checkpoints_total_limit", type=int, default=2,
                     help="keep this many newest checkpoints; 0 keeps them all")
    run.add_argument("--resume", "--resume_from_checkpoint", dest="resume", nargs="?",
                     const="latest", default=None,
                     help="continue from a checkpoint folder, or the latest in --output_dir")
    run.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                     help="default: what `accelerate launch` was told")
    run.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    run.add_argument("--num_threads", type=int, default=None,
                     help="CPU threads per process (default: PyTorch's choice, every core); "
                          "1 is much faster for small models on a machine busy with other work")
    run.add_argument("--with_tracking", action="store_true",
                     help="also log to the trackers Accelerate finds (e.g. TensorBoard)")
    add_hub_arguments(parser)
    return parser


def fail(args, message: str):
    args.parser.error(message)  # prints the usage line and the message, exits with status 2


def check_names(args) -> None:
    """Dataset, model, activation, optimiser and schedule names, before any data is read."""
    if args.dataset not in IMAGE_DATASETS:
        fail(args, f"--dataset {args.dataset!r} is not known; choose one of: "
                   f"{', '.join(IMAGE_DATASETS)}")
    info = IMAGE_DATASETS[args.dataset]
    args.model = args.model or info.default_model
    if not timm.is_model(args.model):
        close = difflib.get_close_matches(args.model, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        fail(args, f"--model {args.model!r} is not in timm's registry.{hint} hf-gem's image "
                   f"models: {', '.join(MODEL_NAMES)}; timm.list_models() lists the rest.")
    try:
        get_act_layer(args.activation)
    except (ValueError, KeyError) as error:
        fail(args, f"--activation {args.activation!r}: {error}")
    if args.opt.lower() not in list_optimizers():
        fail(args, f"--opt {args.opt!r} is not a timm optimiser; for example momentum, sgd, "
                   "adamw, lamb (timm.optim.list_optimizers() lists them all)")
    if args.sched not in SCHEDULES:
        fail(args, f"--sched {args.sched!r}: choose one of {', '.join(SCHEDULES)}")
    if args.num_classes is not None and args.num_classes != info.num_classes:
        fail(args, f"--num_classes {args.num_classes} does not match --dataset {info.name}, "
                   f"which has {info.num_classes} classes; leave the flag out or pass "
                   f"{info.num_classes}")
    interval = str(args.checkpointing_steps).lower()
    if interval not in ("epoch", "none") and not (interval.isdigit() and int(interval) > 0):
        fail(args, f"--checkpointing_steps must be a positive integer, 'epoch' or 'none', "
                   f"got {args.checkpointing_steps!r}")
    for flag in ("epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
                 "gradient_accumulation_steps", "logging_steps", "num_threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            fail(args, f"--{flag} must be at least 1, got {value}")


def resolve_defaults(args) -> None:
    """Fill the per-dataset defaults from the dataset's row of the table."""
    info = IMAGE_DATASETS[args.dataset]
    args.num_classes = info.num_classes
    args.epochs = args.epochs or info.epochs
    args.per_device_train_batch_size = args.per_device_train_batch_size or info.batch_size
    if args.learning_rate is None:
        args.learning_rate = info.learning_rate
    if args.weight_decay is None:
        args.weight_decay = info.weight_decay
    args.output_dir = args.output_dir or f"runs/cnn-{info.name}"
    args.decay_milestones = args.decay_milestones or [args.epochs // 2, args.epochs * 3 // 4]
    args.decay_epochs = args.decay_epochs or max(1.0, args.epochs / 3)


def build_model(args, splits):
    """The timm model, checked on two test images so that a mismatch fails before training."""
    info = splits.info
    optional = dict(drop_rate=args.drop_rate, drop_path_rate=args.drop_path_rate)
    try:
        model = timm.create_model(
            args.model, num_classes=info.num_classes, in_chans=info.channels,
            act_layer=args.activation, **{k: v for k, v in optional.items() if v is not None})
    except (TypeError, ValueError, RuntimeError, AssertionError) as error:
        fail(args, f"--model {args.model} cannot be built with --activation "
                   f"{args.activation} for {info.name} ({type(error).__name__}: {error})")
    sample = ImageCollator(info, train=False)([splits.test[i] for i in range(2)])
    model.eval()
    try:
        with torch.no_grad():
            logits = model(sample["pixel_values"])
    except RuntimeError as error:
        fail(args, f"--model {args.model} cannot take {info.name} images of shape "
                   f"{tuple(sample['pixel_values'].shape[1:])}: {error}")
    if tuple(logits.shape) != (2, info.num_classes):
        fail(args, f"--model {args.model} gives outputs of shape {tuple(logits.shape)} for "
                   f"{info.num_classes} classes")
    return model.train()


def checkpoint_interval(args, updates_per_epoch: int) -> int | None:
    value = str(args.checkpointing_steps).lower()  # checked by check_names
    if value == "none":
        return None
    return updates_per_epoch if value == "epoch" else int(value)


def build_schedule(args, optimizer, updates_per_epoch: int):
    if args.sched == "none":
        return None
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=args.sched, num_epochs=args.epochs, decay_epochs=args.decay_epochs,
        decay_milestones=args.decay_milestones, decay_rate=args.decay_rate,
        min_lr=args.min_lr, warmup_lr=args.warmup_lr, warmup_epochs=args.warmup_epochs,
        step_on_epochs=args.sched_step == "epoch", updates_per_epoch=updates_per_epoch,
    )
    return scheduler


def main(argv=None):
    args = parse_args(argv)
    check_names(args)
    check_hub_arguments(args, args.parser)
    resolve_defaults(args)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision, cpu=args.cpu,
        log_with="all" if args.with_tracking else None, project_dir=args.output_dir,
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per file saved

    # Data: every image in memory; a bad --data_dir fails here, before the model is built.
    try:
        splits = load_image_dataset(args.dataset, args.data_dir, args.max_train_samples,
                                    args.max_eval_samples)
    except DataError as error:
        fail(args, str(error))
    info = splits.info

    set_seed(args.seed)  # the initial weights depend on the seed alone
    model = build_model(args, splits)
    train_loader = make_train_dataloader(
        splits.train, args.per_device_train_batch_size, args.seed,
        collate_fn=ImageCollator(info, train=True), num_workers=args.num_workers)
    eval_loader = make_eval_dataloader(
        splits.test, args.per_device_eval_batch_size, args.seed,
        collate_fn=ImageCollator(info, train=False), num_workers=args.num_workers)
    # The loop prepares the loaders; under P processes each sees 1/P of the batches.
    batches_per_epoch = len(train_loader) // accelerator.num_processes
    if batches_per_epoch == 0:
        fail(args, f"{len(splits.train)} training images give no full batch of "
                   f"{args.per_device_train_batch_size} per process: lower "
                   "--per_device_train_batch_size")
    updates_per_epoch = max(1, batches_per_epoch // args.gradient_accumulation_steps)

    optimizer = create_optimizer_v2(model, opt=args.opt, lr=args.learning_rate,
                                    weight_decay=args.weight_decay, momentum=args.momentum)
    scheduler = build_schedule(args, optimizer, updates_per_epoch)

    run_config = {key: value for key, value in vars(args).items() if key != "parser"}
    task = image_classification_task(splits, args.activation, args.label_smoothing, run_config)
    settings = LoopSettings(
        output_dir=args.output_dir, max_train_steps=args.epochs * updates_per_epoch,
        logging_steps=args.logging_steps, eval_steps=args.eval_steps or updates_per_epoch,
        checkpointing_steps=checkpoint_interval(args, updates_per_epoch),
        checkpoints_total_limit=args.checkpoints_total_limit,
        resume_from_checkpoint=args.resume, seed=args.seed, max_grad_norm=args.max_grad_norm,
        item_name="images", evaluate_at_start=False, with_tracking=args.with_tracking,
        project_name="hf-gem-cnn", tracker_config=run_config,
        header={
            "Dataset": f"{info.name} ({splits.source})",
            "Model": args.model,
            "Activation": f"{args.activation} ({describe(args.activation)})",
            "Epochs": args.epochs,
            "Optimiser": f"{args.opt}, learning rate {args.learning_rate}, weight decay "
                         f"{args.weight_decay}, momentum {args.momentum}",
            "Schedule": f"{args.sched}, stepped every {args.sched_step}",
        },
    )
    try:
        result = train(accelerator, model, optimizer, scheduler, train_loader, eval_loader,
                       task, settings)
    except CheckpointError as error:  # raised while resuming, before the first update
        fail(args, str(error))
    accelerator.end_training()
    accuracy = result.eval_metrics.get("eval_accuracy")
    if result.stopped_by:
        logger.info("Stopped early by %s; run again with --resume to continue.",
                    result.stopped_by)
    elif accuracy is not None:
        logger.info("Test accuracy %.2f %% after %d epochs; the model is in %s",
                    100 * accuracy, args.epochs, args.output_dir)
    if accelerator.is_main_process and not result.stopped_by:
        push_from_args(args, args.output_dir, parser=args.parser)
    return result


def describe(activation: str) -> str:
    """'SE-GEM (N=1, epsilon=1e-4)' for a GEM-family name, 'built into timm' otherwise."""
    if hf_gem.is_gem_name(activation):
        return hf_gem.parse_name(activation).display_name
    return "built into timm"


if __name__ == "__main__":
    outcome = main()
    sys.exit(1 if outcome.stopped_by else 0)
