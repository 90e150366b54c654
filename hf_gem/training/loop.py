"""The one Accelerate training loop of hf-gem, shared by every recipe (text and image models).

Public API
----------
``train(accelerator, model, optimizer, scheduler, train_dataloader, eval_dataloader, task,
settings) -> LoopResult`` prepares the model, optimizer and loaders (pass them unprepared),
resumes if asked, and runs ``settings.max_train_steps`` optimizer updates of
``accelerator.gradient_accumulation_steps`` micro-batches each. The scheduler is not
prepared; it is stepped once per update (transformers: ``step()``; timm:
``step_update(updates)``, plus ``step(epoch)`` when a pass over the data begins) and saved
in every checkpoint. Call ``accelerator.end_training()`` afterwards (trackers, process group).

``TrainTask`` holds what differs between tasks: ``compute_loss(model, batch) -> loss``;
``evaluate(model, eval_dataloader, accelerator) -> {name: float}`` (called in eval mode under
``torch.no_grad``; it gathers across processes itself, e.g. ``accelerator.gather_for_metrics``);
``count_items(batch) -> int`` (tokens, images); ``save_model(accelerator, model, folder)``
(default: ``save_pretrained`` in safetensors, else ``model.safetensors``); ``save_extra(folder)``
(tokenizer, arguments: main process, every checkpoint and the final folder).

``LoopSettings``: output folder, updates, logging/evaluation/checkpoint intervals, resume
target (a folder or ``"latest"``), seed, gradient clipping, the counted items' name ("tokens"
gives ``tokens_seen``, ``tokens_per_second``), trackers, extra header lines. ``LoopResult``:
steps done, last train loss, last evaluation, every ``metrics.jsonl`` record, the last
checkpoint, and the signal that stopped the run (``None`` when it finished).

The loop logs a header block, shows a tqdm bar on the main process, appends one JSON object
per logging step and per evaluation to ``output_dir/metrics.jsonl``, saves
``accelerator.save_state`` checkpoints to ``output_dir/checkpoints/step_<k>``, resumes exactly
(data order, dropout, random collation: build the training loader with
``sampling.make_train_dataloader``), and on SIGINT or SIGTERM saves a checkpoint and returns.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate.logging import get_logger
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from . import checkpoints
from .sampling import derive_seed, seed_everything
from .signals import StopOnSignal

# Logs on the main process only (an Accelerator must exist before the first message).
logger = get_logger("hf_gem.training")


def count_tokens(batch) -> int:
    """Tokens in a batch: attended positions if there is a mask, else every input id."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    if "input_ids" in batch:
        return batch["input_ids"].numel()
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(first)


@dataclass
class TrainTask:
    compute_loss: Callable
    evaluate: Callable | None = None
    count_items: Callable = count_tokens
    save_model: Callable | None = None
    save_extra: Callable | None = None


@dataclass
class LoopSettings:
    output_dir: str
    max_train_steps: int
    logging_steps: int = 10
    eval_steps: int | None = None          # None: evaluate at the start and the end only
    checkpointing_steps: int | None = None
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    seed: int = 42
    max_grad_norm: float | None = 1.0
    item_name: str = "tokens"
    evaluate_at_start: bool = True
    save_final_model: bool = True
    with_tracking: bool = False
    project_name: str = "hf-gem"
    tracker_config: dict = field(default_factory=dict)
    header: dict = field(default_factory=dict)


@dataclass
class LoopResult:
    completed_steps: int
    train_loss: float | None
    eval_metrics: dict
    records: list
    last_checkpoint: str | None
    stopped_by: str | None


# The loop's position and running totals, stored in every checkpoint's trainer_state.json
# and restored from it (the run's shape is stored too, to be checked on resuming).
_SAVED_FIELDS = ("completed_steps", "micro_batches", "items_seen", "pending_items",
                 "window_steps", "window_seconds", "train_loss", "eval_metrics")
_SHAPE_FIELDS = ("global_micro_batch", "parameters")


def _step_scheduler(scheduler, completed_steps: int) -> None:
    if scheduler is None:
        return
    if hasattr(scheduler, "step_update"):  # timm: the update count sets the rate
        scheduler.step_update(num_updates=completed_steps)
    else:
        scheduler.step()


class _Loop:
    """One run's state; ``train`` below is the public entry point."""

    def __init__(self, accelerator, model, optimizer, scheduler, train_dl, eval_dl, task,
                 settings):
        self.accelerator, self.task, self.settings = accelerator, task, settings
        self.output_dir = Path(settings.output_dir)
        self.parameters = sum(p.numel() for p in model.parameters())
        self.train_examples = len(train_dl.dataset)
        self.eval_examples = len(eval_dl.dataset) if eval_dl is not None else 0
        self.per_device_batch = train_dl.batch_size or train_dl.batch_sampler.batch_size
        self.sampler = train_dl.sampler  # kept: the prepared loader may wrap it out of reach
        # Prepare before measuring the loader: it shrinks when several processes share it.
        if eval_dl is None:
            model, optimizer, train_dl = accelerator.prepare(model, optimizer, train_dl)
        else:
            model, optimizer, train_dl, eval_dl = accelerator.prepare(
                model, optimizer, train_dl, eval_dl)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_dl, self.eval_dl = train_dl, eval_dl
        if scheduler is not None:
            accelerator.register_for_checkpointing(scheduler)
        self.accumulation = accelerator.gradient_accumulation_steps
        self.batches_per_epoch = len(train_dl)
        if self.batches_per_epoch == 0:
            raise ValueError(
                "The training loader yields no batch (it drops the last partial batch, and "
                "there are fewer examples than one batch): lower the batch size or add data.")
        self.global_micro_batch = self.per_device_batch * accelerator.num_processes
        # Position and running totals; all of them go into every checkpoint.
        self.completed_steps = self.micro_batches = 0
        self.items_seen, self.pending_items = 0, 0.0
        self.elapsed_before = 0.0
        self.window_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        self.window_items = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        self.window_steps = 0
        self.window_seconds = 0.0
        self.records, self.eval_metrics, self.train_loss = [], {}, None
        self.last_checkpoint = None

    # -- metrics -------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def _flush_window(self) -> float:
        """Combine the window's per-process sums; return the items it adds (all processes)."""
        loss = self.accelerator.reduce(self.window_loss.clone(), reduction="mean")
        items = float(self.accelerator.reduce(self.window_items.clone(), reduction="sum"))
        self.window_loss.fill_(float(loss))  # the same value on every process from here on
        self.window_items.zero_()
        self.items_seen += int(items)
        self.pending_items += items
        return items

    def _write(self, record: dict) -> None:
        self.records.append(record)
        if self.accelerator.is_main_process:
            with open(self.output_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")
        if self.settings.with_tracking:
            numbers = {k: v for k, v in record.items() if isinstance(v, (int, float))}
            self.accelerator.log(numbers, step=record["step"])

    def _log_train(self) -> None:
        self._flush_window()
        items, self.pending_items = self.pending_items, 0.0
        name = self.settings.item_name
        self.train_loss = float(self.window_loss) / max(self.window_steps, 1)
        self._write({
            "kind": "train", "step": self.completed_steps, f"{name}_seen": self.items_seen,
            "train_loss": self.train_loss,
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            f"{name}_per_second": items / max(self.window_seconds, 1e-9),
            "elapsed_seconds": round(self._elapsed(), 3),
        })
        self.window_loss.zero_()
        self.window_steps, self.window_seconds = 0, 0.0

    def _evaluate(self) -> None:
        if self.task.evaluate is None or self.eval_dl is None:
            return
        self._flush_window()
        self.model.eval()
        with torch.no_grad():
            metrics = dict(self.task.evaluate(self.model, self.eval_dl, self.accelerator))
        self.model.train()
        self.eval_metrics = metrics
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        logger.info("step %d: %s", self.completed_steps, shown)
        self._write({
            "kind": "eval", "step": self.completed_steps,
            f"{self.settings.item_name}_seen": self.items_seen,
            **metrics, "elapsed_seconds": round(self._elapsed(), 3),
        })

    # -- checkpoints ---------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        path = checkpoints.checkpoint_dir(self.output_dir, self.completed_steps)
        self.accelerator.save_state(str(path))
        self._flush_window()
        state = {name: getattr(self, name) for name in _SAVED_FIELDS + _SHAPE_FIELDS}
        state.update(samples_consumed=self.micro_batches * self.global_micro_batch,
                     elapsed_seconds=self._elapsed(), window_loss=float(self.window_loss),
                     seed=self.settings.seed)
        if self.accelerator.is_main_process:
            if self.task.save_extra is not None:
                self.task.save_extra(path)
            checkpoints.write_state(path, state)
            checkpoints.remove_old_checkpoints(
                self.output_dir, self.settings.checkpoints_total_limit)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = str(path)

    def _resume(self, target: str) -> None:
        path = checkpoints.resolve_checkpoint(target, self.output_dir)
        state = checkpoints.read_state(path)
        if state.get("parameters") not in (None, self.parameters):
            raise checkpoints.CheckpointError(
                f"--resume_from_checkpoint {path}: it holds a model with "
                f"{state['parameters']:,} parameters but this run builds one with "
                f"{self.parameters:,}. Use the model size, vocabulary and block size the "
                "checkpoint was trained with.")
        try:
            self.accelerator.load_state(str(path))
        except Exception as error:  # safetensors, pickle and shape errors all mean the same
            raise checkpoints.CheckpointError(
                f"--resume_from_checkpoint {path}: the checkpoint is corrupt or does not "
                f"match this model and optimizer ({type(error).__name__}: {error})") from None
        for name in _SAVED_FIELDS:
            setattr(self, name, state.get(name, getattr(self, name)))
        if state.get("global_micro_batch") != self.global_micro_batch:
            self.micro_batches = int(state["samples_consumed"]) // self.global_micro_batch
            logger.warning(
                "The checkpoint was written with %s examples per micro-batch across processes "
                "and this run uses %d: data order continues from the same example count, so "
                "the run will not repeat an uninterrupted one exactly.",
                state.get("global_micro_batch"), self.global_micro_batch)
        self.elapsed_before = float(state["elapsed_seconds"])
        self.window_loss.fill_(float(state.get("window_loss", 0.0)))
        self.resumed_from = str(path)
        if self.accelerator.is_main_process:
            metrics_file = self.output_dir / "metrics.jsonl"
            checkpoints.drop_records_after(metrics_file, self.completed_steps)

    # -- the loop ------------------------------------------------------------------------

    def _micro_batch_stream(self):
        """Micro-batches from the current position onwards, epoch after epoch."""
        epoch, skip = divmod(self.micro_batches, self.batches_per_epoch)
        while True:
            if epoch > 0 and hasattr(self.scheduler, "step_update"):
                self.scheduler.step(epoch)  # timm schedulers with a per-epoch rate
            loader = self.train_dl
            if skip:
                loader = self.accelerator.skip_first_batches(self.train_dl, skip)
            loader.set_epoch(epoch)
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            yield from loader
            epoch, skip = epoch + 1, 0

    def _update(self, stream) -> None:
        """One optimizer update over ``self.accumulation`` micro-batches."""
        started = time.perf_counter()
        process = self.accelerator.process_index
        step_loss = torch.zeros((), dtype=torch.float64, device=self.accelerator.device)
        for index in range(self.accumulation):
            batch = next(stream)
            # Dropout then depends on the position in training alone, so a resume repeats it.
            seed_everything(derive_seed(self.settings.seed, "micro", self.micro_batches,
                                        process))
            last = index == self.accumulation - 1
            with nullcontext() if last else self.accelerator.no_sync(self.model):
                loss = self.task.compute_loss(self.model, batch)
                self.accelerator.backward(loss)  # divides by the accumulation steps
            step_loss += loss.detach().to(torch.float64)
            self.window_items += self.task.count_items(batch)
            self.micro_batches += 1
        if self.settings.max_grad_norm:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.completed_steps += 1
        _step_scheduler(self.scheduler, self.completed_steps)
        self.window_loss += step_loss / self.accumulation
        self.window_steps += 1
        self.window_seconds += time.perf_counter() - started

    def _should_stop(self, catcher: StopOnSignal) -> bool:
        flag = torch.tensor(1.0 if catcher.signal_name else 0.0, device=self.accelerator.device)
        if self.accelerator.num_processes > 1:  # a signal may reach one process only
            flag = self.accelerator.reduce(flag, reduction="sum")
        return bool(flag > 0)

    def _log_header(self) -> None:
        settings, accel = self.settings, self.accelerator
        total_batch = self.global_micro_batch * self.accumulation
        lines = [
            "***** Running training *****",
            f"  Training examples = {self.train_examples:,}",
            f"  Validation examples = {self.eval_examples:,}",
            *(f"  {key} = {value}" for key, value in settings.header.items()),
            f"  Model parameters = {self.parameters:,}",
            f"  Processes = {accel.num_processes} ({accel.distributed_type.value}, "
            f"{accel.device.type}, mixed precision {accel.mixed_precision})",
            f"  Batch size per device = {self.per_device_batch}",
            f"  Gradient accumulation steps = {self.accumulation}",
            f"  Total batch size (devices x accumulation x per device) = {total_batch}",
            f"  Updates per pass over the data = "
            f"{self.batches_per_epoch / self.accumulation:.1f}",
            f"  Total optimisation steps = {settings.max_train_steps:,}",
        ]
        if getattr(self, "resumed_from", None):
            lines.append(f"  Resuming from {self.resumed_from} at step {self.completed_steps}")
        logger.info("\n".join(lines))

    def run(self) -> LoopResult:
        settings, accel = self.settings, self.accelerator
        if accel.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if settings.resume_from_checkpoint:
            self._resume(settings.resume_from_checkpoint)
        elif accel.is_main_process:
            (self.output_dir / "metrics.jsonl").write_text("")
        if settings.with_tracking:
            accel.init_trackers(settings.project_name, config=settings.tracker_config)
        accel.wait_for_everyone()
        self.started = time.perf_counter()
        # Signals are caught from the header to the final save: one arriving during the first
        # evaluation stops the run after its first update (with a checkpoint), and one arriving
        # during the final evaluation or save lets that finish rather than breaking it off.
        with StopOnSignal() as catcher, logging_redirect_tqdm():
            self._log_header()
            if settings.evaluate_at_start and self.completed_steps == 0:
                self._evaluate()
            self.model.train()
            stream = self._micro_batch_stream()
            progress = tqdm(total=settings.max_train_steps, initial=self.completed_steps,
                            desc="training", disable=not accel.is_local_main_process)
            stopped_by, evaluated_at = None, -1
            while self.completed_steps < settings.max_train_steps:
                self._update(stream)
                progress.update(1)
                step = self.completed_steps
                final = step == settings.max_train_steps
                if step % settings.logging_steps == 0 or final:
                    self._log_train()
                    progress.set_postfix(loss=f"{self.train_loss:.4f}")
                if (settings.eval_steps and step % settings.eval_steps == 0) or final:
                    self._evaluate()
                    evaluated_at = step
                if self._should_stop(catcher):
                    stopped_by = catcher.signal_name or "a signal to another process"
                    self._save_checkpoint()
                    logger.info(
                        "Stopped by %s at step %d; checkpoint saved in %s. Continue with "
                        "--resume_from_checkpoint latest.", stopped_by, step,
                        self.last_checkpoint)
                    break
                if settings.checkpointing_steps and step % settings.checkpointing_steps == 0:
                    self._save_checkpoint()
            progress.close()
            stream.close()
            if stopped_by is None:
                if evaluated_at != self.completed_steps:
                    self._evaluate()
                if settings.save_final_model:
                    self._save_final()
        return LoopResult(self.completed_steps, self.train_loss, self.eval_metrics,
                          self.records, self.last_checkpoint, stopped_by)

    def _save_final(self) -> None:
        self.accelerator.wait_for_everyone()
        save_model = self.task.save_model or checkpoints.save_model_folder
        save_model(self.accelerator, self.model, str(self.output_dir))
        if self.accelerator.is_main_process and self.task.save_extra is not None:
            self.task.save_extra(self.output_dir)
        self.accelerator.wait_for_everyone()


def train(accelerator, model, optimizer, scheduler, train_dataloader, eval_dataloader,
          task: TrainTask, settings: LoopSettings) -> LoopResult:
    """Run the loop described in this module's docstring and return what it measured."""
    if settings.max_train_steps < 1:
        raise ValueError(f"max_train_steps must be at least 1, got {settings.max_train_steps}")
    if settings.logging_steps < 1:
        raise ValueError(f"logging_steps must be at least 1, got {settings.logging_steps}")
    loop = _Loop(accelerator, model, optimizer, scheduler, train_dataloader, eval_dataloader,
                 task, settings)
    return loop.run()


__all__ = ["LoopResult", "LoopSettings", "StopOnSignal", "TrainTask", "count_tokens", "train"]
