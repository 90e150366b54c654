"""The shared training loop on a small classifier: exact resume, signals, metrics, checkpoints."""

import json
import os
import signal

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch import nn
from transformers import get_scheduler

from hf_gem.training import (
    CheckpointError, EpochSampler, KeyedCollator, LoopSettings, TrainTask,
    make_eval_dataloader, make_train_dataloader, train,
)
from hf_gem.training.checkpoints import list_checkpoints

TOTAL_STEPS = 12


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def _examples(count=90, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, 6, generator=generator)
    labels = (features[:, 0] + features[:, 1] > 0).long()
    return [{"x": row, "labels": label} for row, label in zip(features, labels)]


def _noisy_collate(examples):
    """Adds noise drawn from the global generator, as random masking or augmentation would."""
    x = torch.stack([example["x"] for example in examples])
    labels = torch.stack([example["labels"] for example in examples])
    return {"x": x + 0.1 * torch.randn_like(x), "labels": labels}


def _run(output_dir, max_train_steps=TOTAL_STEPS, resume=None, stop_at_micro_batch=None,
         checkpointing_steps=4, limit=None, hidden=16, stop_signal=signal.SIGTERM,
         stop_in_evaluation=None):
    """Train a dropout MLP with accumulation 2; batches of 8 from 90 examples (11 per pass)."""
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, hidden), nn.Dropout(0.3), nn.ReLU(), nn.Linear(hidden, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    scheduler = get_scheduler("cosine", optimizer, 2, TOTAL_STEPS)
    data = _examples()
    calls = {"micro_batches": 0}

    def compute_loss(model, batch):
        calls["micro_batches"] += 1
        if calls["micro_batches"] == stop_at_micro_batch:
            os.kill(os.getpid(), stop_signal)
        return nn.functional.cross_entropy(model(batch["x"]), batch["labels"])

    def evaluate(model, dataloader, accelerator):
        calls["evaluations"] = calls.get("evaluations", 0) + 1
        if calls["evaluations"] == stop_in_evaluation:
            os.kill(os.getpid(), stop_signal)
        correct = total = 0
        for batch in dataloader:
            predictions, labels = accelerator.gather_for_metrics(
                (model(batch["x"]).argmax(-1), batch["labels"]))
            correct += int((predictions == labels).sum())
            total += len(labels)
        return {"accuracy": correct / total}

    task = TrainTask(compute_loss, evaluate, count_items=lambda batch: len(batch["x"]))
    settings = LoopSettings(
        str(output_dir), max_train_steps, logging_steps=1, eval_steps=6,
        checkpointing_steps=checkpointing_steps, checkpoints_total_limit=limit,
        resume_from_checkpoint=resume, seed=3, item_name="examples")
    result = train(accelerator, model, optimizer, scheduler,
                   make_train_dataloader(data, 8, seed=3, collate_fn=_noisy_collate),
                   make_eval_dataloader(data[:40], 8, seed=3), task, settings)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    return result, weights


def _train_losses(result):
    return {r["step"]: r["train_loss"] for r in result.records if r["kind"] == "train"}


def test_resumed_run_repeats_an_uninterrupted_one(tmp_path):
    full, full_weights = _run(tmp_path / "full")
    # Stop after the checkpoint at step 4 (mid-pass: 8 of 11 batches), then resume.
    _run(tmp_path / "split", max_train_steps=5, checkpointing_steps=4)
    resumed, resumed_weights = _run(tmp_path / "split", resume="latest")
    assert resumed.completed_steps == full.completed_steps == TOTAL_STEPS
    assert abs(resumed.train_loss - full.train_loss) < 1e-5
    full_losses, resumed_losses = _train_losses(full), _train_losses(resumed)
    for step in range(5, TOTAL_STEPS + 1):
        assert abs(full_losses[step] - resumed_losses[step]) < 1e-5
    assert torch.allclose(full_weights, resumed_weights, atol=1e-6, rtol=0)
    # The stopped run's records after step 4 were dropped when it resumed from step 4.
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines if '"train"' in line]
    assert steps == list(range(1, TOTAL_STEPS + 1))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes_exactly(tmp_path, stop_signal):
    full, _ = _run(tmp_path / "full", checkpointing_steps=None)
    handler_before = signal.getsignal(stop_signal)
    # Micro-batch 13 belongs to update 7; the loop finishes that update, saves, and returns.
    stopped, _ = _run(tmp_path / "run", checkpointing_steps=None, stop_at_micro_batch=13,
                      stop_signal=stop_signal)
    assert stopped.stopped_by == signal.Signals(stop_signal).name
    assert stopped.completed_steps == 7
    assert stopped.last_checkpoint.endswith("step_7")
    assert not (tmp_path / "run" / "model.safetensors").exists()  # no final model yet
    assert signal.getsignal(stop_signal) is handler_before  # handlers restored
    resumed, _ = _run(tmp_path / "run", checkpointing_steps=None, resume="latest")
    assert resumed.stopped_by is None
    assert abs(resumed.train_loss - full.train_loss) < 1e-5
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_signal_during_the_first_evaluation_stops_after_one_update(tmp_path):
    """Ctrl-C while the step-0 evaluation runs: no traceback, a checkpoint after update 1."""
    stopped, _ = _run(tmp_path / "run", checkpointing_steps=None, stop_in_evaluation=1,
                      stop_signal=signal.SIGINT)
    assert stopped.stopped_by == "SIGINT"
    assert stopped.completed_steps == 1
    assert stopped.last_checkpoint.endswith("step_1")


def test_metrics_file_records_training_and_evaluation(tmp_path):
    result, _ = _run(tmp_path, checkpointing_steps=None)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == result.records
    train_records = [r for r in records if r["kind"] == "train"]
    eval_records = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in eval_records] == [0, 6, 12]
    # 2 micro-batches of 8 examples per update.
    assert [r["examples_seen"] for r in train_records] == [16 * s for s in range(1, 13)]
    for record in train_records:
        assert set(record) == {"kind", "step", "examples_seen", "train_loss", "learning_rate",
                               "examples_per_second", "elapsed_seconds"}
        assert record["examples_per_second"] > 0 and record["train_loss"] > 0
    assert train_records[-1]["learning_rate"] == 0.0  # cosine schedule ends at zero
    assert 0.0 <= eval_records[-1]["accuracy"] <= 1.0


def test_checkpoint_rotation_keeps_the_newest(tmp_path):
    _run(tmp_path, checkpointing_steps=2, limit=2)
    names = [path.name for path in list_checkpoints(tmp_path)]
    assert names == ["step_10", "step_12"]
    state = json.loads((tmp_path / "checkpoints" / "step_12" / "trainer_state.json").read_text())
    assert state["completed_steps"] == 12 and state["micro_batches"] == 24


def test_bad_checkpoints_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        _run(tmp_path / "none", resume="latest")
    with pytest.raises(CheckpointError, match="no such folder"):
        _run(tmp_path / "none", resume=str(tmp_path / "missing"))
    _run(tmp_path / "run", max_train_steps=4, checkpointing_steps=4)
    checkpoint = tmp_path / "run" / "checkpoints" / "step_4"
    with pytest.raises(CheckpointError, match="parameters but this run builds"):
        _run(tmp_path / "run", resume="latest", hidden=32)
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt or does not match"):
        _run(tmp_path / "run", resume="latest")
    (checkpoint / "trainer_state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="trainer_state.json is corrupt"):
        _run(tmp_path / "run", resume=str(checkpoint))


def test_sampler_order_depends_on_seed_and_epoch_only():
    first, again, other = EpochSampler(50, seed=1), EpochSampler(50, seed=1), EpochSampler(50, 2)
    assert list(first) == list(again) and sorted(first) == list(range(50))
    assert list(first) != list(other)
    first.set_epoch(1)
    assert list(first) != list(again) and sorted(first) == list(range(50))


def test_keyed_collator_depends_on_the_batch_not_the_global_state():
    collate = KeyedCollator(_noisy_collate, seed=5)
    batch = _examples(4)
    torch.manual_seed(123)
    first = collate(batch)["x"]
    after = torch.rand(1)
    torch.manual_seed(999)
    second = collate(batch)["x"]
    assert torch.equal(first, second)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after)  # the caller's generator was left alone
    assert not torch.equal(collate(_examples(4, seed=1))["x"], first)
