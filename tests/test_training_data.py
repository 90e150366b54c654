"""Text sources, tokenizer training, block packing, the shipped metrics, failing fast offline."""

import json
import time

import pytest

from hf_gem.metrics import load_metric
from hf_gem.training import network
from hf_gem.training.data import default_corpus_texts, load_text_splits, tokenize_and_pack
from hf_gem.training.network import NetworkRequiredError
from hf_gem.training.tokenizer import load_tokenizer, train_bpe_tokenizer

SAMPLE = (
    "The assignment statement binds names to objects. A target list is assigned "
    "each item in turn. When a name is bound twice, the newer binding wins.\n"
)


@pytest.fixture(scope="module")
def default_splits():
    return load_text_splits()


def test_default_corpus_is_real_text_split_the_same_way_every_time(default_splits):
    first, second = default_corpus_texts(), default_corpus_texts()
    assert first == second
    train_chars = sum(map(len, first["train"]))
    validation_chars = sum(map(len, first["validation"]))
    assert train_chars > 300_000  # most of the ~460 kB language reference
    assert 0.05 < validation_chars / (train_chars + validation_chars) < 0.15
    train_paragraphs = {p for text in first["train"] for p in text.split("\n\n")}
    held_out = [p for text in first["validation"] for p in text.split("\n\n") if len(p) > 200]
    repeated = sum(paragraph in train_paragraphs for paragraph in held_out)
    assert repeated < 0.05 * len(held_out)  # held-out paragraphs are not in training
    assert default_splits["train"].column_names == ["text"]
    assert default_splits["train"]["text"] == first["train"]
    assert default_splits["validation"]["text"] == first["validation"]


def test_local_files_of_each_kind(tmp_path):
    (tmp_path / "train.txt").write_text(SAMPLE * 20)
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"body": SAMPLE, "id": i}) + "\n" for i in range(20)))
    from_text = load_text_splits(train_file=str(tmp_path / "train.txt"),
                                 validation_split_percentage=10)
    assert len(from_text["train"]) == 18 and len(from_text["validation"]) == 2
    from_json = load_text_splits(train_file=str(tmp_path / "train.jsonl"),
                                 text_column_name="body", validation_split_percentage=25)
    assert from_json["train"].column_names == ["text"] and len(from_json["validation"]) == 5


def test_dataset_folder_through_dataset_name(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for split, count in (("train", 12), ("validation", 3)):
        rows = "".join(json.dumps({"text": f"{SAMPLE} {i}"}) + "\n" for i in range(count))
        (folder / f"{split}.jsonl").write_text(rows)
    splits = load_text_splits(dataset_name=str(folder))
    assert len(splits["train"]) == 12 and len(splits["validation"]) == 3
    assert splits["validation"][2]["text"].endswith(" 2")


@pytest.mark.parametrize("make, flags, message", [
    (None, {"train_file": "missing.txt"}, "--train_file .*no such file"),
    (("empty.txt", ""), {"train_file": "empty.txt"}, "--train_file .*empty"),
    (("data.jsonl", json.dumps({"body": SAMPLE}) + "\n"), {"train_file": "data.jsonl"},
     "--text_column_name text: .*no column 'text'.*'body'"),
    (("data.jsonl", json.dumps({"text": 3}) + "\n"), {"train_file": "data.jsonl"},
     "--text_column_name text: .*not text"),
    (("data.parquet", "x"), {"train_file": "data.parquet"}, "--train_file .*unsupported"),
    (("blank.txt", "\n\n  \n"), {"train_file": "blank.txt"}, "--train_file: .*holds no text"),
    (("v.txt", SAMPLE), {"validation_file": "v.txt"}, "--validation_file needs --train_file"),
])
def test_bad_data_flags_name_the_flag(tmp_path, make, flags, message):
    if make is not None:
        (tmp_path / make[0]).write_text(make[1])
    flags = {key: str(tmp_path / value) for key, value in flags.items()}
    with pytest.raises(ValueError, match=message):
        load_text_splits(**flags)


def test_trained_tokenizers_and_block_packing(default_splits):
    texts = default_splits["train"]["text"]
    causal = train_bpe_tokenizer(texts, 600, "causal", 256)
    masked = train_bpe_tokenizer(texts, 600, "masked", 256)
    assert len(causal) == len(masked) == 600
    assert causal.eos_token == "<|endoftext|>" and masked.mask_token == "[MASK]"
    ids = masked("def f(x): return x")["input_ids"]
    assert ids[0] == masked.cls_token_id and ids[-1] == masked.sep_token_id
    assert causal.decode(causal("def f(x): return x")["input_ids"]) == "def f(x): return x"
    causal_blocks = tokenize_and_pack(default_splits, causal, 64, "causal")
    row = causal_blocks["train"][0]
    assert len(row["input_ids"]) == 64 and row["labels"] == row["input_ids"]
    all_ids = [i for block in causal_blocks["train"]["input_ids"] for i in block]
    # One end-of-text token per document, minus those cut off with the last partial block.
    assert len(texts) - 1 <= all_ids.count(causal.eos_token_id) <= len(texts)
    masked_blocks = tokenize_and_pack(default_splits, masked, 64, "masked")
    first = masked_blocks["train"][0]
    assert first["input_ids"][0] == masked.cls_token_id
    specials = {masked.cls_token_id, masked.sep_token_id}
    assert [int(i in specials) for i in first["input_ids"]] == first["special_tokens_mask"]


def test_tokenizer_round_trip(tmp_path, default_splits):
    tokenizer = train_bpe_tokenizer(default_splits["train"]["text"][:20], 400, "causal", 128)
    tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again("a = b + c")["input_ids"] == tokenizer("a = b + c")["input_ids"]
    with pytest.raises(ValueError, match="--vocab_size 100 is too small"):
        train_bpe_tokenizer(["text"], 100, "causal", 128)


def test_shipped_metrics_compute_exact_values():
    perplexity = load_metric("perplexity")
    result = perplexity.compute(nll_sum=[2.0, 4.0, 0.0], num_tokens=[1, 2, 3])
    assert result["mean_nll"] == 1.0 and result["perplexity"] == pytest.approx(2.718281828459045)
    accuracy = load_metric("masked_accuracy")
    result = accuracy.compute(predictions=[5, 7, 9, 1], references=[5, 8, -100, 1])
    assert result == {"masked_accuracy": 2 / 3, "masked_tokens": 3}


@pytest.fixture
def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_hub_dataset_fails_fast_offline(offline):
    started = time.perf_counter()
    with pytest.raises(NetworkRequiredError, match="--dataset_name .*needs the network"):
        load_text_splits(dataset_name="hf-gem-tests/never-cached-dataset")
    assert time.perf_counter() - started < 15


def test_hub_tokenizer_fails_fast_offline(offline):
    started = time.perf_counter()
    with pytest.raises(NetworkRequiredError, match="--tokenizer_name .*needs the network"):
        load_tokenizer("hf-gem-tests/never-cached-tokenizer")
    assert time.perf_counter() - started < 15


def test_unreachable_hub_is_detected_quickly(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.perf_counter()
    reason = network.hub_unreachable_reason(timeout=2.0)
    assert reason is not None and "127.0.0.1 cannot be reached" in reason
    assert time.perf_counter() - started < 5
