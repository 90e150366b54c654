"""Uploads, recorded: what push sends to HfApi, and how it fails, without any network."""

from __future__ import annotations

import json
import logging
import re

import httpx2
import pytest
from huggingface_hub import CommitInfo, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from test_hub_models import make_cnn_run, make_gpt2_run

from hf_gem.cli import main
from hf_gem.hub import PushError, push, push_from_args
from hf_gem.hub.recipe_args import add_hub_arguments, check_hub_arguments

TOKEN = "hf_test_token_that_must_never_be_printed"
COMMIT_URL = "https://huggingface.co/hf-gem-test/gpt2-gem/commit/" + "a" * 40
GPT2_FILES = {
    "README.md", "config.json", "generation_config.json", "gem_activations.py",
    "metrics.jsonl", "model.safetensors", "modeling_gem.py", "tokenizer.json",
    "tokenizer_config.json", "training_args.json", "training_curves.png",
}


class RecordingHfApi:
    """Answers like HfApi and records every call, with the bytes of every uploaded file."""

    def __init__(self, fail_on: str | None = None, error: Exception | None = None,
                 drop_from_listing: str | None = None):
        self.calls, self.uploaded = [], {}
        self.fail_on, self.error, self.drop = fail_on, error, drop_from_listing

    def _record(self, name, kwargs):
        self.calls.append((name, kwargs))
        if name == self.fail_on:
            raise self.error

    def whoami(self, **kwargs):
        self._record("whoami", kwargs)
        return {"name": "tester"}

    def create_repo(self, **kwargs):
        self._record("create_repo", kwargs)

    def create_branch(self, **kwargs):
        self._record("create_branch", kwargs)

    def create_commit(self, **kwargs):
        self._record("create_commit", kwargs)
        for operation in kwargs["operations"]:
            with open(operation.path_or_fileobj, "rb") as handle:
                self.uploaded[operation.path_in_repo] = handle.read()
        return CommitInfo(commit_url=COMMIT_URL, commit_message="m", commit_description="",
                          oid="a" * 40)

    def list_repo_files(self, **kwargs):
        self._record("list_repo_files", kwargs)
        return [name for name in self.uploaded if name != self.drop]


def http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/whoami-v2")
    response = httpx2.Response(status, request=request)
    return HfHubHTTPError(f"{status} Client Error for url {request.url}", response=response)


@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-run")
    make_gpt2_run(folder)
    return folder


@pytest.fixture
def with_token(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def without_token(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))


def test_push_records_one_commit_with_exactly_the_staged_files(gpt2_run, with_token):
    api = RecordingHfApi()
    result = push(gpt2_run, "hf-gem-test/gpt2-gem", api=api, private=True)

    assert [name for name, _ in api.calls] == [
        "whoami", "create_repo", "create_commit", "list_repo_files"]
    create_repo = api.calls[1][1]
    assert create_repo["repo_id"] == "hf-gem-test/gpt2-gem" and create_repo["private"] is True
    assert create_repo["exist_ok"] is True
    assert set(api.uploaded) == GPT2_FILES == set(result.files)
    assert api.uploaded["model.safetensors"] == (gpt2_run / "model.safetensors").read_bytes()
    assert api.calls[3][1]["revision"] == "a" * 40  # the listing checks the new commit
    assert result.commit_url == COMMIT_URL

    published_args = json.loads(api.uploaded["training_args.json"])
    assert "hub_token" not in published_args and published_args["max_train_steps"] == 30
    config = json.loads(api.uploaded["config.json"])
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_gem.GemGPT2LMHeadModel"
    assert api.uploaded["training_curves.png"].startswith(b"\x89PNG")
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in api.uploaded)


def test_push_to_a_branch_creates_it_first(gpt2_run, with_token):
    api = RecordingHfApi()
    push(gpt2_run, "hf-gem-test/gpt2-gem", api=api, revision="run-2",
         commit_message="second run")
    names = [name for name, _ in api.calls]
    assert api.calls[names.index("create_repo")][1]["private"] is None  # the owner's default
    assert names.index("create_branch") < names.index("create_commit")
    commit = api.calls[names.index("create_commit")][1]
    assert commit["revision"] == "run-2" and commit["commit_message"] == "second run"


def test_a_dry_run_sends_nothing_and_needs_no_token(gpt2_run, without_token):
    api = RecordingHfApi()
    result = push(gpt2_run, "hf-gem-test/gpt2-gem", api=api, dry_run=True)
    assert api.calls == [] and result.dry_run and set(result.files) == GPT2_FILES


def test_recipe_flags_push_the_output_folder(gpt2_run, with_token):
    import argparse

    parser = argparse.ArgumentParser()
    add_hub_arguments(parser)
    api = RecordingHfApi()
    assert push_from_args(parser.parse_args([]), gpt2_run, api=api) is None
    args = parser.parse_args(["--push_to_hub", "--hub_model_id", "hf-gem-test/gpt2-gem"])
    check_hub_arguments(args, parser)
    assert set(push_from_args(args, gpt2_run, api=api).files) == GPT2_FILES


def test_a_recipe_push_that_fails_exits_with_status_1_and_says_how_to_retry(
        gpt2_run, with_token, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="gpt2_pretrain.py")
    add_hub_arguments(parser)
    args = parser.parse_args(["--push_to_hub", "--hub_model_id", "org/gpt2-gem"])
    api = RecordingHfApi(fail_on="whoami", error=http_error(401))
    with pytest.raises(SystemExit) as exit_info:
        push_from_args(args, gpt2_run, api=api, parser=parser)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and TOKEN not in err
    assert err.startswith("gpt2_pretrain.py: error: publishing failed: failed while checking")
    assert f"publish it later with: hf-gem push {gpt2_run} --repo-id org/gpt2-gem" in err


def test_recipe_flags_fail_before_training(without_token, monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    add_hub_arguments(parser)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PushError, match="HF_HUB_OFFLINE is set"):
        check_hub_arguments(parser.parse_args(["--push_to_hub", "--hub_model_id", "org/n"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for argv, message in ((["--push_to_hub"], "needs --hub_model_id"),
                          (["--push_to_hub", "--hub_model_id", "a b/c"], "invalid repository"),
                          (["--push_to_hub", "--hub_model_id", "org/name"], "no Hugging Face "
                                                                            "token")):
        with pytest.raises(PushError, match=message):
            check_hub_arguments(parser.parse_args(argv))


# ---------------------------------------------------------------------------------------------
# Failures through the command line: a clear message, exit code 1, the token never shown.


def run_cli(argv, capsys, caplog):
    with caplog.at_level(logging.DEBUG):
        code = main(argv)
    out, err = capsys.readouterr()
    text = out + err + caplog.text
    assert TOKEN not in text
    return code, out, err


@pytest.mark.parametrize("error, message", [
    (http_error(401), "rejected the token \\(HTTP 401\\)"),
    (http_error(403), "may not write to hf-gem-test/gpt2-gem \\(HTTP 403\\)"),
])
def test_a_rejected_token_fails_with_a_clear_message(gpt2_run, with_token, monkeypatch,
                                                     capsys, caplog, error, message):
    monkeypatch.setattr("hf_gem.hub.publish.HfApi",
                        lambda: RecordingHfApi(fail_on="whoami", error=error))
    code, out, err = run_cli(["push", str(gpt2_run), "--repo-id", "hf-gem-test/gpt2-gem"],
                             capsys, caplog)
    assert code == 1 and out == ""
    assert err.startswith("hf-gem push: error: failed while checking the token")
    assert re.search(message, err)


def test_no_token_fails_before_any_request(gpt2_run, without_token, monkeypatch, capsys,
                                           caplog):
    api = RecordingHfApi()
    monkeypatch.setattr("hf_gem.hub.publish.HfApi", lambda: api)
    code, _, err = run_cli(["push", str(gpt2_run), "--repo-id", "org/name"], capsys, caplog)
    assert code == 1 and "no Hugging Face token found" in err and api.calls == []


@pytest.mark.parametrize("repo_id", ["org/bad name", "org/name!", "a/b/c", "org--x/name"])
def test_bad_repository_ids_are_refused(gpt2_run, with_token, capsys, caplog, repo_id):
    code, _, err = run_cli(["push", str(gpt2_run), "--repo-id", repo_id], capsys, caplog)
    assert code == 1 and f"invalid repository id {repo_id!r}" in err


def test_a_missing_folder_and_a_folder_without_weights_are_refused(tmp_path, with_token,
                                                                   capsys, caplog):
    code, _, err = run_cli(["push", str(tmp_path / "nowhere"), "--repo-id", "org/name"],
                           capsys, caplog)
    assert code == 1 and "does not exist" in err
    make_cnn_run(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    code, _, err = run_cli(["push", str(tmp_path), "--repo-id", "org/name"], capsys, caplog)
    assert code == 1 and "has no safetensors weights" in err


def test_an_unreachable_hub_fails_with_a_clear_message(gpt2_run, with_token, monkeypatch,
                                                       capsys, caplog):
    # Nothing listens on port 9 of this machine: the connection is refused at once.
    monkeypatch.setattr("hf_gem.hub.publish.HfApi",
                        lambda: HfApi(endpoint="http://127.0.0.1:9"))
    code, out, err = run_cli(["push", str(gpt2_run), "--repo-id", "org/name"], capsys, caplog)
    assert code == 1 and out == ""
    assert "could not reach the Hugging Face Hub at http://127.0.0.1:9" in err
    assert "Connection refused" in err and "Check the network" in err


@pytest.mark.parametrize("fail_on, drop, message", [
    ("create_commit", None, "no commit was made"),
    ("list_repo_files", None, "confirming the upload \\(it may be incomplete\\)"),
    (None, "model.safetensors", "incomplete: the commit lacks model.safetensors"),
])
def test_a_partial_upload_is_never_reported_as_success(gpt2_run, with_token, monkeypatch,
                                                       capsys, caplog, fail_on, drop, message):
    error = ConnectionError(f"connection reset; token {TOKEN}")
    api = RecordingHfApi(fail_on=fail_on, error=error, drop_from_listing=drop)
    monkeypatch.setattr("hf_gem.hub.publish.HfApi", lambda: api)
    code, out, err = run_cli(["push", str(gpt2_run), "--repo-id", "org/name"], capsys, caplog)
    assert code == 1 and "Uploaded" not in out
    assert re.search(message, err)


def test_a_token_inside_the_training_output_is_never_uploaded(tmp_path, with_token):
    make_cnn_run(tmp_path)
    (tmp_path / "run_config.json").write_text(json.dumps({"note": f"pushed with {TOKEN}"}))
    api = RecordingHfApi()
    # The value reaches run_config.json and the card's table of arguments: both are caught.
    with pytest.raises(PushError, match="contains the Hugging Face token") as info:
        push(tmp_path, "org/cnn", api=api)
    assert TOKEN not in str(info.value) and api.calls == []


def test_the_cli_dry_run_lists_files_and_prints_the_card(gpt2_run, without_token, capsys,
                                                         caplog):
    code, out, _ = run_cli(["push", str(gpt2_run), "--repo-id", "org/gpt2-gem", "--dry-run"],
                           capsys, caplog)
    assert code == 0
    assert out.startswith("Would upload 11 files to org/gpt2-gem (revision main):")
    assert all(name in out for name in GPT2_FILES)
    assert "Model card (README.md):" in out and "library_name: transformers" in out
