"""GPT-2 (causal LM) and BERT (masked LM) for the pretraining recipes, driven by one table.

Each family names its transformers classes, its training objective, the config field that
limits the sequence length, the activation the paper recommends, and its size presets with
the training settings that suit each size. The loop-facing pieces (loss and evaluation for
each objective) are here too, so the recipes only pick a family.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

import hf_gem
from hf_gem.metrics import load_metric
from hf_gem.names import is_gem_name, parse_name

IGNORED_LABEL = -100


@dataclass(frozen=True)
class Preset:
    """One model size: config fields and the training settings that suit it."""

    config: dict
    block_size: int
    batch_size: int
    learning_rate: float
    max_train_steps: int
    warmup_steps: int
    note: str


@dataclass(frozen=True)
class Family:
    name: str
    config_class: type
    model_class: type
    objective: str          # "causal" or "masked"
    positions_field: str    # the config field that bounds --block_size
    default_activation: str
    presets: dict


GPT2 = Family(
    name="gpt2", config_class=GPT2Config, model_class=GPT2LMHeadModel, objective="causal",
    positions_field="n_positions", default_activation="gem_n2",
    presets={
        # About 1.3M parameters: a few minutes on 2 CPU cores for the default corpus.
        "tiny": Preset(dict(n_layer=4, n_embd=128, n_head=4, n_positions=256),
                       block_size=128, batch_size=16, learning_rate=2e-3,
                       max_train_steps=300, warmup_steps=30, note="trains in minutes on a CPU"),
        # GPT-2 small, as in the paper (124M parameters with GPT-2's 50,257-token vocabulary).
        "124m": Preset(dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
                       block_size=1024, batch_size=8, learning_rate=6e-4,
                       max_train_steps=10000, warmup_steps=500, note="GPT-2 small"),
    },
)

BERT = Family(
    name="bert", config_class=BertConfig, model_class=BertForMaskedLM, objective="masked",
    positions_field="max_position_embeddings", default_activation="egem_eps10",
    presets={
        "tiny": Preset(dict(num_hidden_layers=4, hidden_size=128, num_attention_heads=4,
                            intermediate_size=512, max_position_embeddings=256),
                       block_size=128, batch_size=16, learning_rate=2e-3,
                       max_train_steps=300, warmup_steps=30, note="trains in minutes on a CPU"),
        # BERT-small (4 layers, 512 wide, 8 heads), the size the paper's BERT results use.
        "small": Preset(dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8,
                             intermediate_size=2048, max_position_embeddings=512),
                        block_size=128, batch_size=32, learning_rate=5e-4,
                        max_train_steps=50000, warmup_steps=1000, note="BERT-small"),
        "base": Preset(dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                            intermediate_size=3072, max_position_embeddings=512),
                       block_size=128, batch_size=32, learning_rate=1e-4,
                       max_train_steps=100000, warmup_steps=10000, note="BERT-base"),
    },
)

FAMILIES = {family.name: family for family in (GPT2, BERT)}


def describe_activation(name: str) -> str:
    """'GEM (N=2) [gem_n2]' for a GEM-family name, the name itself for a built-in one."""
    return f"{parse_name(name).display_name} [{name}]" if is_gem_name(name) else name


def check_activation(name: str) -> None:
    """Raise a ValueError naming --activation unless transformers can build ``name``."""
    from hf_gem.integrations.transformers import resolve

    try:
        resolve(name)
    except (KeyError, ValueError) as error:
        raise ValueError(f"--activation {name}: {error}") from None
    if is_gem_name(name) and parse_name(name).gated:
        plain = name[: -len("_glu")]
        raise ValueError(
            f"--activation {name}: the gated (GLU) form halves the feed-forward width, and "
            f"GPT-2's and BERT's feed-forward layers are not gated; use {plain!r}.")


def build_model(family: Family, model_size: str, activation: str, tokenizer,
                block_size: int, dropout: float | None = None):
    """A freshly initialised model of ``family`` at ``model_size`` using ``activation``."""
    preset = family.presets[model_size]
    positions = preset.config[family.positions_field]
    if block_size > positions:
        raise ValueError(
            f"--block_size {block_size} is larger than the {positions} positions of "
            f"--model_size {model_size}; use --block_size {positions} or less.")
    fields = dict(preset.config, vocab_size=len(tokenizer))
    if family.objective == "causal":
        fields.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        if dropout is not None:
            fields.update(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    else:
        fields.update(pad_token_id=tokenizer.pad_token_id)
        if dropout is not None:
            fields.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    config = hf_gem.patch_config(family.config_class(**fields), activation)
    model = family.model_class(config)
    if family.objective == "causal":
        # transformers finds the loss from the class name, which "GPT2LMHeadModel" does not
        # match, and warns; naming it changes nothing else.
        model.loss_type = "ForCausalLM"
    return model


# ---------------------------------------------------------------------------------------------
# Loss and evaluation for each objective.

@lru_cache(maxsize=None)
def _metric(name: str):
    """One loaded metric per process; ``compute`` empties it, so it can be used again."""
    return load_metric(name, keep_in_memory=True)


def language_model_loss(model, batch):
    """The model's own loss: mean next-token (causal) or masked-token (masked) cross-entropy."""
    return model(**batch).loss


def _token_losses(logits, labels):
    """Per-position cross-entropy (natural log), 0 where the label is ignored."""
    return F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORED_LABEL,
        reduction="none").view(labels.shape)


def evaluate_causal(model, dataloader, accelerator) -> dict:
    """Validation loss (mean NLL per predicted token) and perplexity, over all processes."""
    nll_sums, token_counts = [], []
    for batch in dataloader:
        logits = model(input_ids=batch["input_ids"]).logits
        labels = batch["labels"][:, 1:]  # position t predicts token t + 1
        losses = _token_losses(logits[:, :-1], labels)
        counted = (labels != IGNORED_LABEL).sum(dim=1)
        nll_sum, num_tokens = accelerator.gather_for_metrics(
            (losses.sum(dim=1).double(), counted))
        nll_sums += nll_sum.tolist()
        token_counts += num_tokens.tolist()
    result = _metric("perplexity").compute(nll_sum=nll_sums, num_tokens=token_counts)
    return {"val_loss": result["mean_nll"], "perplexity": result["perplexity"]}


def evaluate_masked(model, dataloader, accelerator) -> dict:
    """Validation loss over masked tokens, and masked-token accuracy, over all processes."""
    loss_sum, token_count, predicted, expected = 0.0, 0, [], []
    for batch in dataloader:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        labels = batch["labels"]
        masked = labels != IGNORED_LABEL
        losses = _token_losses(logits, labels)
        # Gather whole rows: the number of masked positions differs between processes.
        per_example = torch.stack([losses.sum(dim=1).double(), masked.sum(dim=1).double()], 1)
        predictions = torch.where(masked, logits.argmax(dim=-1), IGNORED_LABEL)
        per_example, predictions, labels = accelerator.gather_for_metrics(
            (per_example, predictions, labels))
        loss_sum += float(per_example[:, 0].sum())
        token_count += int(per_example[:, 1].sum())
        keep = labels != IGNORED_LABEL
        predicted += predictions[keep].tolist()
        expected += labels[keep].tolist()
    result = _metric("masked_accuracy").compute(predictions=predicted, references=expected)
    return {"val_loss": loss_sum / max(token_count, 1),
            "masked_accuracy": result["masked_accuracy"]}


EVALUATORS = {"causal": evaluate_causal, "masked": evaluate_masked}
