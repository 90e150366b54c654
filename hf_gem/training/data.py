"""Text for the language-model recipes: where it comes from, and how it becomes blocks.

Three sources, one result (a ``DatasetDict`` with "train" and "validation" splits and a single
"text" column):

* no data flags: Python's own language reference (``pydoc_data.topics``, about 460 kB of
  English written by people, present in every Python install). Every topic is cut into
  paragraphs and a checksum of each paragraph's text sends about one in ten to validation:
  the split is the same on every run and machine with the same Python version, and a
  paragraph that the reference repeats under several topics never lands on both sides;
* ``--dataset_name`` (and ``--dataset_config_name``): any dataset on the Hub or on disk that
  has a text column;
* ``--train_file`` / ``--validation_file``: local .txt (one example per line), .json/.jsonl
  or .csv files.

Tokenisation and packing into blocks of ``--block_size`` tokens run through ``datasets.map``,
whose cache makes the second run with the same data, tokenizer and block size start at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import zlib
from itertools import chain
from pathlib import Path

from datasets import DatasetDict, load_dataset

from .network import load_from_hub

FILE_BUILDERS = {".txt": "text", ".text": "text", ".json": "json", ".jsonl": "json",
                 ".csv": "csv"}
VALIDATION_SHARE = 10  # one paragraph in ten (by checksum) of the default corpus is held out
SPLIT_SEED = 0  # the held-out part of a source without a validation split never varies


def cache_root() -> Path:
    base = os.environ.get("HF_GEM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "hf_gem")
    return Path(base)


def default_corpus_texts() -> dict:
    """The default corpus as {"train": [...], "validation": [...]}, one entry per topic."""
    from pydoc_data.topics import topics

    splits = {"train": [], "validation": []}
    for name in sorted(topics):
        parts = {"train": [], "validation": []}
        for paragraph in re.split(r"\n\s*\n", topics[name]):
            paragraph = paragraph.strip("\n")
            if not paragraph.strip():
                continue
            held_out = zlib.crc32(paragraph.encode()) % VALIDATION_SHARE == 0
            parts["validation" if held_out else "train"].append(paragraph)
        for split, paragraphs in parts.items():
            if paragraphs:
                splits[split].append("\n\n".join(paragraphs))
    return splits


def default_corpus_files() -> dict:
    """Write the default corpus as JSON lines once (per Python version) and return the paths.

    Going through files keeps one code path for every source and lets ``datasets`` cache the
    tokenised blocks.
    """
    splits = default_corpus_texts()
    digest = hashlib.sha256(json.dumps(splits).encode()).hexdigest()[:12]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = cache_root() / "corpora" / f"python-{version}-reference-{digest}"
    paths = {}
    for split, texts in splits.items():
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
            partial.replace(path)  # atomic: parallel runs never see half a file
        paths[split] = str(path)
    return paths


def _check_file(flag: str, value: str) -> str:
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{flag} {value}: no such file. Give the path of an existing file.")
    if path.suffix.lower() not in FILE_BUILDERS:
        raise ValueError(
            f"{flag} {value}: unsupported file type {path.suffix!r}; use one of "
            f"{', '.join(sorted(FILE_BUILDERS))}.")
    if path.stat().st_size == 0:
        raise ValueError(f"{flag} {value}: the file is empty. Give a file that holds text.")
    return str(path)


def _load_files(train_file, validation_file) -> DatasetDict:
    if train_file is None:
        raise ValueError("--validation_file needs --train_file too (the text to train on).")
    files = {"train": _check_file("--train_file", train_file)}
    if validation_file is not None:
        files["validation"] = _check_file("--validation_file", validation_file)
    builders = {FILE_BUILDERS[Path(path).suffix.lower()] for path in files.values()}
    if len(builders) > 1:
        raise ValueError(
            "--train_file and --validation_file must be the same kind of file "
            f"(got {', '.join(sorted(builders))}).")
    return load_dataset(builders.pop(), data_files=files)


def _load_named(dataset_name, dataset_config_name) -> DatasetDict:
    if Path(dataset_name).exists():
        return load_dataset(dataset_name, dataset_config_name)
    return load_from_hub(
        "--dataset_name", dataset_name, lambda: load_dataset(dataset_name, dataset_config_name),
        "pass --train_file with a local file, or leave the data flags out to train on the "
        "offline default corpus")


def _select_text_column(raw: DatasetDict, column: str, source: str) -> DatasetDict:
    for split, dataset in raw.items():
        if column not in dataset.column_names:
            raise ValueError(
                f"--text_column_name {column}: the {split} split of {source} has no column "
                f"{column!r}; its columns are {dataset.column_names}. Pass --text_column_name "
                "with the column that holds the text.")
        dtype = getattr(dataset.features[column], "dtype", None)
        if dtype not in ("string", "large_string"):
            raise ValueError(
                f"--text_column_name {column}: column {column!r} of {source} holds "
                f"{dataset.features[column]}, not text. Pass the column that holds strings.")
    return DatasetDict({
        split: dataset.select_columns([column]).rename_column(column, "text")
        if column != "text" else dataset.select_columns(["text"])
        for split, dataset in raw.items()
    })


def load_text_splits(dataset_name=None, dataset_config_name=None, train_file=None,
                     validation_file=None, text_column_name="text",
                     validation_split_percentage=5) -> DatasetDict:
    """Train and validation text from the source the flags name (see the module docstring)."""
    if dataset_name and (train_file or validation_file):
        raise ValueError(
            "Pass either --dataset_name or --train_file/--validation_file, not both.")
    if dataset_name:
        raw, source = _load_named(dataset_name, dataset_config_name), f"dataset {dataset_name}"
    elif train_file or validation_file:
        raw, source = _load_files(train_file, validation_file), f"file {train_file}"
    else:
        raw = load_dataset("json", data_files=default_corpus_files())
        source = "the Python language reference"
    if "train" not in raw:
        raise ValueError(
            f"--dataset_name {dataset_name}: the dataset has no 'train' split (it has "
            f"{', '.join(raw)}).")
    raw = DatasetDict({name: raw[name] for name in ("train", "validation") if name in raw})
    raw = _select_text_column(raw, text_column_name, source)
    raw = raw.filter(lambda batch: [bool(t and t.strip()) for t in batch["text"]],
                     batched=True, desc="dropping empty lines")
    if len(raw["train"]) == 0:
        flag = "--dataset_name" if dataset_name else "--train_file"
        raise ValueError(f"{flag}: {source} holds no text in its training split.")
    if "validation" not in raw or len(raw["validation"]) == 0:
        if not 0 < validation_split_percentage < 100:
            raise ValueError(
                "--validation_split_percentage must be between 0 and 100 (exclusive), got "
                f"{validation_split_percentage}.")
        if len(raw["train"]) < 2:
            raise ValueError(
                f"{source} has a single example and no validation split: add "
                "--validation_file, or give more text.")
        parts = raw["train"].train_test_split(
            test_size=validation_split_percentage / 100, seed=SPLIT_SEED)
        raw = DatasetDict({"train": parts["train"], "validation": parts["test"]})
    return raw


def tokenize_and_pack(raw: DatasetDict, tokenizer, block_size: int, objective: str,
                      num_proc=None, overwrite_cache=False) -> DatasetDict:
    """Tokenise every text and cut the token stream into blocks of ``block_size`` tokens.

    Causal LM: documents are joined with the end-of-text token and ``labels`` equal
    ``input_ids`` (the model shifts them). Masked LM: each document is wrapped as
    [CLS] text [SEP] and a ``special_tokens_mask`` tells the collator what never to mask.
    The tail shorter than a block is dropped, as in transformers' examples.
    """
    masked = objective == "masked"
    end_of_text = None if masked else tokenizer.eos_token_id

    def tokenize(batch):
        encoded = tokenizer(batch["text"], add_special_tokens=masked, verbose=False,
                            return_attention_mask=False, return_special_tokens_mask=masked)
        if end_of_text is not None:
            encoded["input_ids"] = [ids + [end_of_text] for ids in encoded["input_ids"]]
        return dict(encoded)

    def pack(batch):
        joined = {key: list(chain.from_iterable(batch[key])) for key in batch}
        usable = (len(joined["input_ids"]) // block_size) * block_size
        blocks = {key: [values[i:i + block_size] for i in range(0, usable, block_size)]
                  for key, values in joined.items()}
        if not masked:
            blocks["labels"] = [list(block) for block in blocks["input_ids"]]
        return blocks

    tokenized = raw.map(tokenize, batched=True, remove_columns=["text"], num_proc=num_proc,
                        load_from_cache_file=not overwrite_cache, desc="tokenising")
    return tokenized.map(pack, batched=True, batch_size=1000, num_proc=num_proc,
                         load_from_cache_file=not overwrite_cache,
                         desc=f"packing into blocks of {block_size}")
