"""Bad flags stop the pretraining recipes before training, with a message naming the flag."""

import json

import pytest
from accelerate.state import AcceleratorState, GradientState

from hf_gem.training.lm_recipe import main

TEXT = "Names refer to objects. Names are introduced by name binding operations.\n" * 40


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def run_expecting_error(recipe, flags, tmp_path, capsys):
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        main(recipe, ["--output_dir", str(output), "--vocab_size", "300", *flags])
    assert stopped.value.code == 2
    assert not (output / "metrics.jsonl").exists()  # training never started
    return capsys.readouterr().err


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize("recipe", ["gpt2", "bert"])
def test_model_flags(recipe, tmp_path, capsys):
    error = run_expecting_error(recipe, ["--model_size", "huge"], tmp_path, capsys)
    assert "--model_size" in error and "invalid choice: 'huge'" in error and "tiny" in error
    error = run_expecting_error(recipe, ["--activation", "gem_n2_eps3"], tmp_path, capsys)
    assert "--activation gem_n2_eps3" in error and "egem_eps3" in error
    error = run_expecting_error(recipe, ["--activation", "gelu_neww"], tmp_path, capsys)
    assert "--activation gelu_neww" in error and "gelu_new" in error
    error = run_expecting_error(recipe, ["--activation", "egem_n0"], tmp_path, capsys)
    assert "--activation egem_n0" in error and "integer >= 1" in error
    error = run_expecting_error(recipe, ["--activation", "gem_n2_glu"], tmp_path, capsys)
    assert "--activation gem_n2_glu" in error and "use 'gem_n2'" in error


def test_block_size_beyond_the_model_positions(tmp_path, capsys):
    train = write(tmp_path, "train.txt", TEXT)
    error = run_expecting_error("gpt2", ["--train_file", train, "--block_size", "512"],
                                tmp_path, capsys)
    assert "--block_size 512 is larger than the 256 positions of --model_size tiny" in error
    assert "use --block_size 256 or less" in error


@pytest.mark.parametrize("name, content, extra, expected", [
    ("data.txt", None, [], "--train_file {path}: no such file"),
    ("data.txt", "", [], "--train_file {path}: the file is empty"),
    ("data.jsonl", json.dumps({"body": "some text"}) + "\n", [], "--text_column_name text: "),
    # About 200 tokens of text: not one block of 256.
    ("data.txt", "tiny text.\n" * 40, ["--block_size", "256"],
     "--block_size 256: the train text is shorter than one block"),
])
def test_data_flags(name, content, extra, expected, tmp_path, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    error = run_expecting_error("gpt2", ["--train_file", str(path), *extra], tmp_path, capsys)
    assert expected.format(path=path) in error


def test_checkpoint_flags(tmp_path, capsys):
    error = run_expecting_error("gpt2", ["--resume_from_checkpoint", "latest"], tmp_path, capsys)
    assert "--resume_from_checkpoint latest: no complete checkpoint" in error
    fake = tmp_path / "out" / "checkpoints" / "step_5"
    fake.mkdir(parents=True)
    (fake / "trainer_state.json").write_text("{truncated")
    error = run_expecting_error("gpt2", ["--resume_from_checkpoint", str(fake)], tmp_path,
                                capsys)
    assert "trainer_state.json is corrupt" in error
    (fake / "trainer_state.json").write_text(json.dumps({"step": 5}))
    error = run_expecting_error("gpt2", ["--resume_from_checkpoint", "latest"], tmp_path, capsys)
    assert "is corrupt or from another program (missing completed_steps" in error


def test_hub_names_fail_fast_without_network(offline, tmp_path, capsys):
    error = run_expecting_error("gpt2", ["--dataset_name", "hf-gem-tests/not-cached"],
                                tmp_path, capsys)
    assert "--dataset_name hf-gem-tests/not-cached: this needs the network" in error
    train = write(tmp_path, "train.txt", TEXT)
    error = run_expecting_error(
        "bert", ["--train_file", train, "--tokenizer_name", "hf-gem-tests/not-cached-tok"],
        tmp_path, capsys)
    assert "--tokenizer_name hf-gem-tests/not-cached-tok: this needs the network" in error


def test_numeric_flags(tmp_path, capsys):
    error = run_expecting_error("gpt2", ["--max_train_steps", "0"], tmp_path, capsys)
    assert "--max_train_steps must be a positive integer, got 0" in error
    error = run_expecting_error("bert", ["--learning_rate", "-1"], tmp_path, capsys)
    assert "--learning_rate must be positive" in error
