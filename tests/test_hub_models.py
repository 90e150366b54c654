"""Small trained GEM models saved as training output folders, shared by the Hub tests.

Each builder trains a tiny model for a few steps (so its weights are no longer the
initial ones), saves it the way the recipes do (weights in safetensors, config, tokenizer
for GPT-2, the resolved arguments and ``metrics.jsonl``) and returns the model in eval mode.
The tests in this file check that the Hub code reads those folders correctly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import hf_gem
import hf_gem.models
from hf_gem.hub import RunFolderError, read_run_folder

VOCAB = 96


def _train_a_little(model, inputs, loss_of, steps: int = 3):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_of(model, inputs).backward()
        optimizer.step()
    return model.eval()


def _write_run_files(folder: Path, arguments: dict, evaluations: list) -> None:
    """The resolved arguments and a metrics.jsonl shaped like the training loop's."""
    (folder / "training_args.json").write_text(json.dumps(arguments, indent=2))
    lines = []
    for step, (train_loss, eval_metrics) in enumerate(evaluations, start=1):
        lines.append({"kind": "train", "step": step * 10, "train_loss": train_loss,
                      "learning_rate": 1e-2})
        lines.append({"kind": "eval", "step": step * 10, **eval_metrics})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def text_inputs() -> torch.Tensor:
    return torch.arange(24).reshape(2, 12) * 7 % VOCAB


def image_inputs() -> torch.Tensor:
    return torch.linspace(-2.0, 2.0, 2 * 64).reshape(2, 1, 8, 8)


def make_gpt2_run(folder, activation: str = "gem_n2"):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=32,
                        activation_function=activation, bos_token_id=0, eos_token_id=0)
    model = _train_a_little(GPT2LMHeadModel(config), text_inputs(),
                            lambda m, ids: m(ids, labels=ids).loss)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer.train_from_iterator(["a small corpus for a small tokenizer"] * 4,
                                  trainers.BpeTrainer(vocab_size=VOCAB,
                                                      special_tokens=["<|endoftext|>"]))
    PreTrainedTokenizerFast(tokenizer_object=tokenizer,
                            eos_token="<|endoftext|>").save_pretrained(folder)
    _write_run_files(folder, {"activation": activation, "dataset_name": "pydoc-topics",
                              "learning_rate": 0.01, "max_train_steps": 30,
                              "hub_token": "hf_never_published"},
                     [(4.5, {"eval_loss": 4.6, "perplexity": math.exp(4.6)}),
                      (4.1, {"eval_loss": 4.3, "perplexity": math.exp(4.3)}),
                      (3.9, {"eval_loss": 4.4, "perplexity": math.exp(4.4)})])
    return model


def make_bert_run(folder, activation: str = "egem_eps10"):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(1)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                        intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=32,
                        hidden_act=activation)
    model = _train_a_little(BertForMaskedLM(config), text_inputs(),
                            lambda m, ids: m(ids, labels=ids).loss)
    model.save_pretrained(folder)
    _write_run_files(Path(folder), {"activation": activation, "dataset_name": "pydoc-topics"},
                     [(5.0, {"eval_loss": 5.1}), (4.0, {"eval_loss": 4.2})])
    return model


def make_cnn_run(folder, activation: str = "segem_eps1e-4"):
    import timm
    import torch.nn.functional as F

    torch.manual_seed(2)
    model = timm.create_model("mnist_cnn", num_classes=10, in_chans=1, act_layer=activation)
    labels = torch.tensor([3, 7])
    model = _train_a_little(model, image_inputs(),
                            lambda m, images: F.cross_entropy(m(images), labels))
    hf_gem.models.save_pretrained(model, folder, extra_config={"dataset": "digits"})
    (Path(folder) / "run_config.json").write_text(json.dumps({"dataset": "digits",
                                                              "activation": activation}))
    _write_run_files(Path(folder), {}, [(2.2, {"eval_loss": 2.1, "eval_accuracy": 0.25}),
                                        (1.9, {"eval_loss": 1.8, "eval_accuracy": 0.5})])
    (Path(folder) / "training_args.json").unlink()  # this recipe writes run_config.json
    return model


def test_gpt2_folder_is_read_with_its_tokenizer_and_metrics(tmp_path):
    model = make_gpt2_run(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"optimizer": 1}, tmp_path / "optimizer.pt")
    run = read_run_folder(tmp_path)
    assert (run.library, run.model_type, run.activation) == ("transformers", "gpt2", "gem_n2")
    assert run.spec == hf_gem.parse_name("gem_n2")
    assert run.weights == ["model.safetensors"] and run.has_tokenizer
    assert run.training_args_file == "training_args.json"
    assert len(run.metrics) == 6 and run.metrics[-1]["eval_loss"] == 4.4
    left_out = dict(run.left_out)
    assert "pickle" in left_out["optimizer.pt"] and "checkpoints/" in left_out
    # lm_head.weight is tied to the token embedding and saved once.
    assert run.parameter_count == sum(p.numel() for p in model.parameters())


def test_cnn_folder_reads_the_activation_from_the_config(tmp_path):
    make_cnn_run(tmp_path)
    run = read_run_folder(tmp_path)
    assert (run.library, run.architecture, run.activation) == ("timm", "mnist_cnn",
                                                               "segem_eps1e-4")
    assert run.training_args_file == "run_config.json" and not run.has_tokenizer


def test_a_gelu_baseline_has_no_gem_spec(tmp_path):
    make_bert_run(tmp_path, activation="gelu")
    run = read_run_folder(tmp_path)
    assert run.activation == "gelu" and run.spec is None


def test_folders_that_cannot_be_published_say_why(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        read_run_folder(tmp_path / "missing")
    with pytest.raises(RunFolderError, match="no config.json"):
        read_run_folder(tmp_path)
    make_bert_run(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save({"weight": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(RunFolderError, match="no safetensors.*pytorch_model.bin.*pickle"):
        read_run_folder(tmp_path)
