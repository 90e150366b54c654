"""Image classification as a :class:`~hf_gem.training.loop.TrainTask` for the shared loop.

The loop stays task-agnostic; this module says what it means to train an image classifier:
cross-entropy on ``{"pixel_values", "labels"}`` batches, test loss and accuracy (through the
``evaluate`` module shipped in ``hf_gem/metrics/accuracy``) gathered across processes, and a
final folder written by :func:`hf_gem.models.save_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..metrics import load_metric
from ..models import save_pretrained
from .loop import TrainTask
from .vision_data import ImageSplits


def count_images(batch) -> int:
    return len(batch["labels"])


def image_classification_task(
    splits: ImageSplits,
    activation: str,
    label_smoothing: float = 0.0,
    run_config: dict | None = None,
) -> TrainTask:
    """The task for ``splits``; ``run_config`` (the recipe's flags) goes into every checkpoint
    as ``run_config.json`` and into the final folder."""
    info = splits.info
    accuracy = load_metric("accuracy", keep_in_memory=True)  # no cache file for processes to share
    data_config = dict(input_size=(info.channels, info.image_size, info.image_size),
                       mean=info.mean, std=info.std, crop_pct=1.0)
    extra_config = dict(dataset=info.name)
    if splits.class_names:
        extra_config["label_names"] = list(splits.class_names)

    def compute_loss(model, batch):
        logits = model(batch["pixel_values"])
        return F.cross_entropy(logits, batch["labels"], label_smoothing=label_smoothing)

    def evaluate(model, loader, accelerator) -> dict:
        losses = []
        for batch in loader:
            logits = model(batch["pixel_values"])
            loss = F.cross_entropy(logits.float(), batch["labels"], reduction="none")
            # gather_for_metrics drops the copies that pad the last batch across processes.
            predictions, labels, loss = accelerator.gather_for_metrics(
                (logits.argmax(dim=-1), batch["labels"], loss))
            accuracy.add_batch(predictions=predictions.cpu(), references=labels.cpu())
            losses.append(loss.cpu())
        return {
            "eval_loss": float(torch.cat(losses).mean()),
            "eval_accuracy": float(accuracy.compute()["accuracy"]),
        }

    def save_model(accelerator, model, folder) -> None:
        if accelerator.is_main_process:
            save_pretrained(accelerator.unwrap_model(model), folder, activation=activation,
                            data_config=data_config, extra_config=extra_config)

    def save_extra(folder) -> None:
        if run_config is not None:
            text = json.dumps(run_config, indent=2, sort_keys=True, default=str)
            (Path(folder) / "run_config.json").write_text(text + "\n")

    return TrainTask(compute_loss=compute_loss, evaluate=evaluate, count_items=count_images,
                     save_model=save_model, save_extra=save_extra)
