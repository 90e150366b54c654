"""Two CPU processes (torchrun, gloo) train like one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState, GradientState

from hf_gem.training.lm_recipe import main

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "gpt2_pretrain.py"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def _text_files(folder):
    from pydoc_data.topics import topics

    names = [name for name in sorted(topics) if len(topics[name]) > 3000]
    (folder / "train.txt").write_text("\n".join(topics[name] for name in names[:6]))
    (folder / "validation.txt").write_text(topics[names[6]])
    return folder / "train.txt", folder / "validation.txt"


def _flags(files, output_dir, per_device_batch):
    # No dropout: each process draws its own masks, which one process cannot reproduce.
    return ["--train_file", str(files[0]), "--validation_file", str(files[1]),
            "--output_dir", str(output_dir), "--block_size", "32", "--vocab_size", "512",
            "--per_device_train_batch_size", str(per_device_batch), "--learning_rate", "3e-3",
            "--num_warmup_steps", "2", "--max_train_steps", "6", "--logging_steps", "1",
            "--eval_steps", "6", "--dropout", "0"]


def _records(output_dir):
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    files = _text_files(tmp_path)
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               str(RECIPE), *_flags(files, tmp_path / "two", per_device_batch=4)]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=400)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Processes = 2 (MULTI_CPU" in finished.stderr
    assert main("gpt2", _flags(files, tmp_path / "one", per_device_batch=8)) == 0
    two, one = _records(tmp_path / "two"), _records(tmp_path / "one")
    assert [r["kind"] for r in two] == [r["kind"] for r in one]  # written once, not twice
    for record_two, record_one in zip(two, one):
        assert record_two["step"] == record_one["step"]
        assert record_two["tokens_seen"] == record_one["tokens_seen"]
        for key in ("train_loss", "val_loss"):
            if key in record_one:
                assert abs(record_two[key] - record_one[key]) < 1e-4, (key, record_one["step"])
    final_train = [r["train_loss"] for r in two if r["kind"] == "train"][-1]
    assert final_train < [r["train_loss"] for r in two if r["kind"] == "train"][0]
