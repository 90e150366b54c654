"""Tokenizers for the pretraining recipes: an existing one by name, or one trained here.

Without ``--tokenizer_name`` the recipes train a byte-level BPE tokenizer on the training
split with the ``tokenizers`` library (a few seconds for the default corpus), save it beside
the model and in every checkpoint, and load that saved copy when a run is resumed, so a
resumed run never sees a different vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .network import load_from_hub

# Special tokens per training objective, named as transformers' tokenizers name them.
CAUSAL_SPECIAL = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                  "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
MASKED_SPECIAL = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                  "sep_token": "[SEP]", "mask_token": "[MASK]"}
MIN_VOCAB_SIZE = 260  # the 256 byte symbols and the special tokens


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, objective: str,
                        model_max_length: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers.

    ``objective`` is "causal" (GPT-2 style: one end-of-text token) or "masked" (BERT style:
    [CLS] text [SEP], with [PAD], [UNK] and [MASK]).
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"--vocab_size {vocab_size} is too small: a byte-level BPE tokenizer needs at "
            f"least {MIN_VOCAB_SIZE} entries (256 bytes plus special tokens); try 4096.")
    special = CAUSAL_SPECIAL if objective == "causal" else MASKED_SPECIAL
    special_tokens = list(dict.fromkeys(special.values()))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if objective == "masked":
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, **special)


def load_tokenizer(name: str):
    """A tokenizer from a local folder, or from the Hub (failing fast without network)."""
    if Path(name).is_dir():
        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"--tokenizer_name {name}: the folder holds no loadable tokenizer ({error})"
            ) from None
    return load_from_hub(
        "--tokenizer_name", name, lambda: AutoTokenizer.from_pretrained(name),
        "leave --tokenizer_name out to train a tokenizer on the training text")


def check_tokenizer(tokenizer, objective: str, flag: str = "--tokenizer_name") -> None:
    """The tokens each objective needs: an end-of-text token (causal), [MASK] (masked)."""
    if objective == "masked" and tokenizer.mask_token is None:
        raise ValueError(
            f"{flag}: this tokenizer has no mask token, which masked-language-model training "
            "needs; use a BERT-style tokenizer or leave the flag out to train one.")
    if objective == "causal" and tokenizer.eos_token is None:
        raise ValueError(
            f"{flag}: this tokenizer has no end-of-text token, which separates documents "
            "when they are packed into blocks; use a GPT-2-style tokenizer or leave the flag "
            "out to train one.")
