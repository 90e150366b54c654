"""Model cards: a recipe run, a dry-run push, and a card whose metadata carries the run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from test_hub_models import make_bert_run, make_cnn_run, make_gpt2_run
from test_hub_push import RecordingHfApi

from hf_gem.cli import main
from hf_gem.hub import CardError, check_card, read_run_folder, render_card
from hf_gem.hub.curves import plot_training_curves, summarize

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def last_values(metrics_file: Path) -> dict:
    values = {}
    for line in metrics_file.read_text().splitlines():
        values.update(json.loads(line))
    return values


def test_a_recipe_run_then_a_dry_run_push(tmp_path, capsys, monkeypatch,
                                          fresh_accelerate_state):
    """The CNN recipe with --push_to_hub (recorded), then `hf-gem push --dry-run`."""
    api = RecordingHfApi()
    monkeypatch.setattr("hf_gem.hub.publish.HfApi", lambda: api)
    monkeypatch.setenv("HF_TOKEN", "hf_recipe_test_token")
    output = tmp_path / "run"
    load_recipe("cnn_train").main([
        "--cpu", "--output_dir", str(output), "--epochs", "1", "--max_train_samples", "64",
        "--max_eval_samples", "32", "--checkpointing_steps", "none", "--logging_steps", "1",
        "--push_to_hub", "--hub_model_id", "hf-gem-test/digits-cnn"])
    capsys.readouterr()
    assert [name for name, _ in api.calls][-2:] == ["create_commit", "list_repo_files"]
    assert api.uploaded["model.safetensors"] == (output / "model.safetensors").read_bytes()

    assert main(["push", str(output), "--repo-id", "hf-gem-test/digits-cnn", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    listing, card_text = printed.split("\nModel card (README.md):\n\n")
    for name in ("README.md", "config.json", "metrics.jsonl", "model.safetensors",
                 "run_config.json", "training_curves.png"):
        assert f"  {name} " in listing

    card = check_card(card_text)
    final = last_values(output / "metrics.jsonl")
    results = {result.metric_name: result for result in card.data.eval_results}
    assert results["eval_accuracy"].metric_value == final["eval_accuracy"]
    assert results["eval_loss"].metric_value == final["eval_loss"]
    assert results["eval_accuracy"].dataset_type == "digits"
    assert card.data.library_name == "timm" and "se-gem" in card.data.tags
    assert "SE-GEM_{N=1, eps=1e-4}(x) = x/2 + |x|^3 / (2 (x^2 + 1e-4))" in card.text
    assert 'timm.create_model("hf-hub:hf-gem-test/digits-cnn", pretrained=True)' in card.text
    assert api.uploaded["README.md"].decode().rstrip() == card_text.rstrip()


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_language_model_recipes_check_the_hub_flags_before_training(family, monkeypatch,
                                                                    capsys):
    from hf_gem.training.lm_recipe import main as lm_main

    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        lm_main(family, ["--push_to_hub", "--hub_model_id", "org/bad name"])
    assert exit_info.value.code == 2
    assert "invalid repository id 'org/bad name'" in capsys.readouterr().err


def test_gpt2_card_states_the_activation_results_loading_and_citation(tmp_path):
    make_gpt2_run(tmp_path, activation="gem_n2")
    run = read_run_folder(tmp_path)
    card = check_card(str(render_card(run, "org/gpt2-gem", has_remote_code=True)))
    metadata = card.data.to_dict()
    assert metadata["license"] == "apache-2.0" and metadata["library_name"] == "transformers"
    assert {"hf-gem", "gem-activation", "gem", "gem_n2"} <= set(metadata["tags"])
    assert metadata["datasets"] == ["pydoc-topics"]
    assert metadata["pipeline_tag"] == "text-generation"
    index = metadata["model-index"][0]["results"][0]
    assert index["task"]["type"] == "text-generation"
    values = {metric["name"]: metric["value"] for metric in index["metrics"]}
    assert values == {"eval_loss": 4.4, "perplexity": pytest.approx(81.450868664968)}
    assert "train_loss" not in values  # training-set numbers are not evaluation results

    text = card.text
    assert "GEM_2(x) = x F(x) = x^5 / (x^4 + 1)   for x > 0, and 0 for x <= 0" in text
    assert "F(t) = t^4 / (t^4 + 1)" in text and "C^4" in text
    assert "| eval_loss | 4.4 | 4.3 | 20 | lower |" in text  # final, best, where the best was
    assert 'AutoModelForCausalLM.from_pretrained("org/gpt2-gem")' in text
    assert 'from_pretrained("org/gpt2-gem", trust_remote_code=True)' in text
    assert "journal = {arXiv preprint arXiv:2604.21677}" in text
    assert "hf_never_published" not in text and "hub_token" not in text


def test_e_gem_and_baseline_cards(tmp_path):
    make_bert_run(tmp_path / "egem", activation="egem_eps10")
    card = check_card(str(render_card(read_run_folder(tmp_path / "egem"), "org/bert")))
    assert "E-GEM_{N=1, eps=10}(x) = x F(x) = x^3 / (x^2 + 10)" in card.text
    assert card.data.pipeline_tag == "fill-mask" and "e-gem" in card.data.tags
    assert "trust_remote_code" not in card.text  # this render was told there is no remote code

    make_bert_run(tmp_path / "gelu", activation="gelu")
    card = check_card(str(render_card(read_run_folder(tmp_path / "gelu"), "org/bert-gelu")))
    assert "baseline" in card.data.tags and "gem-activation" not in card.data.tags
    assert "gelu (a baseline, not a GEM-family activation)" in card.text


def test_check_card_names_each_metadata_problem():
    good = ModelCard.from_template(card_data=__import__("huggingface_hub").ModelCardData(
        license="apache-2.0", library_name="timm", tags=["hf-gem"]), template_str="---\n"
        "{{ card_data }}\n---\n# card\n")
    check_card(str(good))
    bad = str(good).replace("apache-2.0", "my-own-license").replace("library_name: timm",
                                                                    "library_name: keras2")
    with pytest.raises(CardError, match="license 'my-own-license'.*library_name 'keras2'"):
        check_card(bad)
    with pytest.raises(CardError, match="does not parse"):
        check_card("---\nlicense: [unclosed\n---\n")


def test_summary_and_plot(tmp_path):
    records = [{"step": 1, "train_loss": 3.0}, {"step": 1, "eval_accuracy": 0.5},
               {"step": 2, "train_loss": 2.0, "learning_rate": 0.1},
               {"step": 2, "eval_accuracy": 0.4, "eval_loss": float("nan")}]
    summary = summarize(records)
    assert summary["eval_accuracy"] == {"final": 0.4, "best": 0.5, "final_at": 2, "best_at": 1}
    assert summary["train_loss"]["best"] == 2.0 and "learning_rate" not in summary
    assert "eval_loss" not in summary  # not a finite number
    path = plot_training_curves(records, tmp_path / "curves.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert plot_training_curves([{"step": 1}], tmp_path / "none.png") is None


def test_card_for_an_image_model_without_metrics(tmp_path):
    make_cnn_run(tmp_path)
    (tmp_path / "metrics.jsonl").unlink()
    card = check_card(str(render_card(read_run_folder(tmp_path), "org/cnn")))
    assert card.data.eval_results is None and "No metrics were recorded" in card.text
