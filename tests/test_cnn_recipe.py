"""recipes/cnn_train.py end to end, on tiny offline configurations."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_gem.models import load_pretrained
from hf_gem.training.vision_data import ImageCollator, dataset_info, load_image_dataset

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cnn_train.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("cnn_train", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def run(recipe, *flags):
    return recipe.main(["--cpu", "--logging_steps", "5", *[str(flag) for flag in flags]])


def fake_cifar10(folder: Path) -> Path:
    """A tiny CIFAR-10-shaped DatasetDict on disk, so the augmented path runs offline."""
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)

    def split(count):
        return datasets.Dataset.from_dict(
            {"img": rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
             "label": [i % 10 for i in range(count)]},
            features=datasets.Features({"img": datasets.Image(),
                                        "label": datasets.ClassLabel(num_classes=10)}),
        )

    datasets.DatasetDict(train=split(48), test=split(16)).save_to_disk(str(folder))
    return folder


def test_digits_run_learns_and_saves_a_loadable_model(recipe, tmp_path):
    result = run(recipe, "--output_dir", tmp_path, "--epochs", "3", "--activation", "egem_eps1e-4",
                 "--checkpointing_steps", "none")
    assert result.completed_steps == 3 * (1437 // 32)
    assert result.eval_metrics["eval_accuracy"] > 0.85  # ten classes: chance is 0.10

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [44, 88, 132]  # once per epoch
    assert records[0]["kind"] == "train" and records[0]["images_seen"] == 5 * 32

    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["architecture"], config["activation"]) == ("mnist_cnn", "egem_eps1e-4")
    assert (config["num_classes"], config["in_chans"], config["dataset"]) == (10, 1, "digits")
    assert json.loads((tmp_path / "run_config.json").read_text())["epochs"] == 3

    # The saved folder reproduces the accuracy the run reported.
    model = load_pretrained(tmp_path).eval()
    splits = load_image_dataset("digits")
    batch = ImageCollator(dataset_info("digits"), train=False)(
        [splits.test[i] for i in range(len(splits.test))])
    with torch.no_grad():
        predictions = model(batch["pixel_values"]).argmax(dim=-1)
    accuracy = float((predictions == batch["labels"]).float().mean())
    assert accuracy == pytest.approx(result.eval_metrics["eval_accuracy"], abs=1e-6)


@pytest.mark.parametrize("sched_step", ["update", "epoch"])
def test_resume_reaches_the_weights_of_an_uninterrupted_run(recipe, tmp_path, sched_step):
    data_dir = fake_cifar10(tmp_path / "data")
    # 48 images in batches of 8: 6 updates per epoch, 18 in all. Augmentation (crop and
    # flip), dropout and the cosine schedule (per update or per epoch) resume exactly.
    flags = ["--dataset", "cifar10", "--data_dir", data_dir, "--model", "mnist_cnn",
             "--epochs", "3", "--batch_size", "8", "--sched_step", sched_step, "--seed", "7",
             "--activation", "segem_eps1e-4"]
    whole = tmp_path / "whole"
    run(recipe, *flags, "--output_dir", whole, "--checkpointing_steps", "4",
        "--checkpoints_total_limit", "0")
    # Step 8 lies in the middle of the second epoch.
    assert (whole / "checkpoints" / "step_8" / "trainer_state.json").is_file()

    resumed = tmp_path / "resumed"
    result = run(recipe, *flags, "--output_dir", resumed, "--checkpointing_steps", "none",
                 "--resume", whole / "checkpoints" / "step_8")
    assert result.completed_steps == 18

    expected = load_file(str(whole / "model.safetensors"))
    actual = load_file(str(resumed / "model.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    # And the weights did move during the resumed part.
    at_step_8 = load_file(str(whole / "checkpoints" / "step_8" / "model.safetensors"))
    assert not torch.equal(at_step_8["fc.weight"], actual["fc.weight"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "cifar_resnet57"], "--model 'cifar_resnet57'.*cifar_resnet56.*mnist_cnn"),
        (["--dataset", "cifar11"], "--dataset 'cifar11'.*digits, fashion_mnist"),
        (["--activation", "segme_eps1e-4"], "--activation 'segme_eps1e-4'.*segem"),
        (["--activation", "egem_eps0"], "--activation 'egem_eps0'.*epsilon"),
        (["--num_classes", "100"], "--num_classes 100.*digits.*10 classes"),
        (["--dataset", "fashion_mnist", "--data_dir", "."], "--data_dir.*train-images-idx3"),
        (["--opt", "sgdd"], "--opt 'sgdd'"),
        (["--sched", "linear"], "--sched 'linear'.*cosine"),
        (["--checkpointing_steps", "often"], "--checkpointing_steps"),
        (["--resume"], "no complete checkpoint"),
    ],
)
def test_bad_input_fails_before_training(recipe, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        run(recipe, "--output_dir", tmp_path / "out", *flags)
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err, re.DOTALL)
    assert not (tmp_path / "out" / "metrics.jsonl").exists()
