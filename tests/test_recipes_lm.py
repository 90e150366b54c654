"""The GPT-2 and BERT pretraining recipes end to end, on small slices of real text.

Each run uses the tiny preset with 32-token blocks and a 512-token vocabulary, trained on
about 40 kB of Python's language reference, so a run takes seconds on one core.
"""

import json
import logging
import shutil

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from transformers import AutoTokenizer, BertForMaskedLM, DataCollatorForLanguageModeling
from transformers import GPT2LMHeadModel, default_data_collator

from hf_gem.training.data import load_text_splits, tokenize_and_pack
from hf_gem.training.language_models import evaluate_causal, evaluate_masked
from hf_gem.training.lm_recipe import main
from hf_gem.training.sampling import make_eval_dataloader


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    """About 40 kB of training text and 6 kB of validation text, from different topics."""
    from pydoc_data.topics import topics

    folder = tmp_path_factory.mktemp("text")
    chosen = {"train": [], "validation": []}
    sizes = {"train": 0, "validation": 0}
    for name in sorted(topics, key=lambda n: (len(topics[n]), n)):
        text = topics[name]
        if len(text) < 1500:
            continue
        split = "train" if sizes["train"] < 40_000 else "validation"
        if split == "validation" and sizes["validation"] > 6_000:
            break
        chosen[split].append(text)
        sizes[split] += len(text)
    for split, texts in chosen.items():
        (folder / f"{split}.txt").write_text("\n".join(texts))
    return folder / "train.txt", folder / "validation.txt"


def small_flags(text_files, output_dir, steps, *extra):
    train_file, validation_file = text_files
    return ["--train_file", str(train_file), "--validation_file", str(validation_file),
            "--output_dir", str(output_dir), "--block_size", "32", "--vocab_size", "512",
            "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
            "--num_warmup_steps", "4", "--max_train_steps", str(steps),
            "--logging_steps", "1", *extra]


def read_records(output_dir):
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def evaluations(records):
    return [record for record in records if record["kind"] == "eval"]


def reload_and_evaluate(output_dir, model_class, text_files, objective, collator_for):
    """Load the saved folder with from_pretrained alone and evaluate it as the loop did."""
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    model = model_class.from_pretrained(output_dir).eval()
    raw = load_text_splits(train_file=str(text_files[0]), validation_file=str(text_files[1]))
    blocks = tokenize_and_pack(raw, tokenizer, 32, objective)
    args = json.loads((output_dir / "training_args.json").read_text())
    loader = make_eval_dataloader(blocks["validation"], args["per_device_eval_batch_size"],
                                  args["seed"], collator_for(tokenizer))
    accelerator = Accelerator(cpu=True)
    model, loader = accelerator.prepare(model, loader)
    evaluate = evaluate_causal if objective == "causal" else evaluate_masked
    with torch.no_grad():
        return model, evaluate(model, loader, accelerator)


def test_gpt2_recipe_trains_saves_and_reloads(text_files, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    output = tmp_path / "gpt2"
    assert main("gpt2", small_flags(text_files, output, 40, "--eval_steps", "20")) == 0
    assert "***** Running training *****" in caplog.text
    assert "Activation = GEM (N=2) [gem_n2]" in caplog.text
    for name in ("model.safetensors", "config.json", "tokenizer.json", "training_args.json"):
        assert (output / name).is_file(), name
    assert json.loads((output / "config.json").read_text())["activation_function"] == "gem_n2"
    arguments = json.loads((output / "training_args.json").read_text())
    assert arguments["activation"] == "gem_n2" and arguments["max_train_steps"] == 40
    assert arguments["vocab_size_actual"] == 512
    records = read_records(output)
    evals = evaluations(records)
    assert [record["step"] for record in evals] == [0, 20, 40]
    assert evals[-1]["perplexity"] < 0.5 * evals[0]["perplexity"]
    train = [record for record in records if record["kind"] == "train"]
    assert train[-1]["tokens_seen"] == 40 * 8 * 32
    assert all(record["tokens_per_second"] > 0 for record in train)
    model, reloaded = reload_and_evaluate(output, GPT2LMHeadModel, text_files, "causal",
                                          lambda tokenizer: default_data_collator)
    assert model.config.activation_function == "gem_n2"
    assert abs(reloaded["val_loss"] - evals[-1]["val_loss"]) < 1e-5


def test_bert_recipe_trains_saves_and_reloads(text_files, tmp_path):
    output = tmp_path / "bert"
    assert main("bert", small_flags(text_files, output, 40, "--eval_steps", "40")) == 0
    config = json.loads((output / "config.json").read_text())
    assert config["hidden_act"] == "egem_eps10"
    evals = evaluations(read_records(output))
    assert [record["step"] for record in evals] == [0, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert evals[-1]["masked_accuracy"] > evals[0]["masked_accuracy"]
    _, reloaded = reload_and_evaluate(
        output, BertForMaskedLM, text_files, "masked",
        lambda tokenizer: DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    assert abs(reloaded["val_loss"] - evals[-1]["val_loss"]) < 1e-5
    assert reloaded["masked_accuracy"] == pytest.approx(evals[-1]["masked_accuracy"], abs=1e-9)


@pytest.mark.parametrize("recipe", ["gpt2", "bert"])
def test_run_stopped_after_a_checkpoint_resumes_to_the_same_loss(recipe, text_files, tmp_path):
    flags = ["--checkpointing_steps", "4", "--eval_steps", "12"]
    full = tmp_path / "full"
    assert main(recipe, small_flags(text_files, full, 12, *flags)) == 0
    # A run that stopped right after its checkpoint at step 4: the checkpoint alone remains.
    stopped = tmp_path / "stopped"
    shutil.copytree(full / "checkpoints" / "step_4", stopped / "checkpoints" / "step_4")
    resume_flags = [*flags, "--resume_from_checkpoint", "latest"]
    if recipe == "gpt2":
        resume_flags += ["--with_tracking", "--report_to", "tensorboard"]
    assert main(recipe, small_flags(text_files, stopped, 12, *resume_flags)) == 0
    full_train = {r["step"]: r["train_loss"] for r in read_records(full) if r["kind"] == "train"}
    resumed = {r["step"]: r["train_loss"] for r in read_records(stopped) if r["kind"] == "train"}
    assert sorted(resumed) == list(range(5, 13))
    assert abs(resumed[12] - full_train[12]) < 1e-5
    assert all(abs(resumed[step] - full_train[step]) < 1e-5 for step in resumed)
    arguments = json.loads((stopped / "training_args.json").read_text())
    assert arguments["tokenizer"].startswith("saved with")  # the checkpoint's tokenizer
    if recipe == "gpt2":
        assert list(stopped.rglob("events.out.tfevents*")), "no TensorBoard event file"


def test_bf16_mixed_precision_on_cpu(text_files, tmp_path, monkeypatch, caplog):
    # What `accelerate launch --mixed_precision bf16` sets for the script. CPUs without native
    # bfloat16 arithmetic are slow at it, so this run is shorter: 4 updates, 2 kB of
    # validation text.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    caplog.set_level(logging.INFO)
    short_validation = tmp_path / "validation.txt"
    short_validation.write_text(text_files[1].read_text()[:2000])
    output = tmp_path / "bf16"
    flags = small_flags((text_files[0], short_validation), output, 4, "--eval_steps", "4")
    assert main("gpt2", flags) == 0
    assert "mixed precision bf16" in caplog.text
    evals = evaluations(read_records(output))
    assert all(torch.isfinite(torch.tensor(r["val_loss"])) for r in evals)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]


def test_resuming_with_changed_flags_is_reported(text_files, tmp_path, caplog):
    run = tmp_path / "run"
    assert main("gpt2", small_flags(text_files, run, 4, "--checkpointing_steps", "2")) == 0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        flags = small_flags(text_files, run, 6, "--resume_from_checkpoint", "latest",
                            "--learning_rate", "0.01")
        assert main("gpt2", flags) == 0
    message = " ".join(record.getMessage() for record in caplog.records)
    assert "differ from the ones it was trained with" in message
    assert "--max_train_steps 4 -> 6" in message and "--learning_rate" in message
