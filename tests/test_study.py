"""The study runner (skip, resume, errors), its report, and the activation plot."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hf_gem import functional
from hf_gem.names import parse_name
from hf_gem.study import report, runner
from hf_gem.study.activation_plot import plot_activations


def _reference_builtin(name, x):
    """Independent float64 formulas for the built-ins the studies compare against."""
    if name == "relu":
        return x.clamp_min(0), (x > 0).to(x.dtype)
    if name == "gelu_new":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        value = 0.5 * x * (1 + torch.tanh(inner))
        sech2 = 1 - torch.tanh(inner) ** 2
        slope = 0.5 * (1 + torch.tanh(inner)) + 0.5 * x * sech2 * math.sqrt(2 / math.pi) * (
            1 + 3 * 0.044715 * x**2)
        return value, slope
    raise AssertionError(name)


def test_the_plotted_data_is_the_library_functions(tmp_path):
    names = ["gelu_new", "relu", "gem", "gem_n2", "egem_eps1e-4", "segem_eps1e-4"]
    figure = plot_activations(names, tmp_path / "activations.png", points=241)
    assert (tmp_path / "activations.png").stat().st_size > 10_000
    value_axis, slope_axis = figure.axes
    for axis, which in ((value_axis, 0), (slope_axis, 1)):
        lines = {line.get_label(): line for line in axis.get_lines() if line.get_label() in names}
        assert sorted(lines) == sorted(names)
        for name, line in lines.items():
            x = torch.tensor(line.get_xdata(), dtype=torch.float64)
            plotted = torch.tensor(line.get_ydata(), dtype=torch.float64)
            assert x[0] == -3 and x[-1] == 3 and len(x) == 241
            if name in ("relu", "gelu_new"):
                expected = _reference_builtin(name, x)[which]
            else:
                spec = parse_name(name)
                formula = functional.activation if which == 0 else functional.derivative
                expected = formula(x, spec.variant, spec.order, spec.epsilon)
            torch.testing.assert_close(plotted, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "activations,fragment",
    [([], "empty"), (["", " "], "empty"), (["gem", "gme_n2"], "Did you mean 'gem_n2'"),
     (["gem", "gem"], "listed twice"), (["egem_eps0"], "epsilon")],
)
def test_bad_activation_lists_fail_before_any_run(activations, fragment, tmp_path):
    with pytest.raises(runner.StudyError) as error:
        runner.run_study("cnn", activations, [0], tmp_path)
    assert fragment in str(error.value)
    assert not (tmp_path / "runs").exists()


def test_unknown_recipe_is_refused(tmp_path):
    with pytest.raises(runner.StudyError, match="choose one of gpt2, bert, cnn"):
        runner.run_study("resnet", ["gem"], [0], tmp_path)
    from hf_gem.cli import main

    assert main(["compare", "--recipe", "resnet", "--study_dir", str(tmp_path)]) == 2


def _finished_folder(folder):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    marker = {"returncode": 0, "peak_rss_mb": 1.0, "recipe_args": []}
    (folder / runner.MARKER).write_text(json.dumps(marker))


def test_finished_runs_are_skipped_and_interrupted_ones_resumed(tmp_path, monkeypatch):
    planned = runner.plan(tmp_path, ["relu", "gem", "segem"], [0])
    _finished_folder(planned[0].folder)
    (planned[1].folder / "checkpoints" / "step_4").mkdir(parents=True)  # interrupted run
    launched = []

    def fake_execute(run, command, recipe_args):
        launched.append((run.activation, command))
        return {"returncode": 0, "wall_seconds": 0.0}

    monkeypatch.setattr(runner, "execute", fake_execute)
    runner.run_study("cnn", ["relu", "gem", "segem"], [0], tmp_path)
    assert [name for name, _ in launched] == ["gem", "segem"]
    assert launched[0][1][-2:] == ["--resume_from_checkpoint", "latest"]
    assert "--resume_from_checkpoint" not in launched[1][1]
    assert launched[1][1][-6:] == ["--activation", "segem", "--seed", "0", "--output_dir",
                                   str(planned[2].folder)]


def test_a_finished_run_with_other_arguments_is_not_counted(tmp_path):
    planned = runner.plan(tmp_path, ["relu"], [0])
    _finished_folder(planned[0].folder)
    with pytest.raises(runner.StudyError, match="different recipe arguments"):
        runner.run_study("cnn", ["relu"], [0], tmp_path, ["--epochs", "3"])


def test_a_signal_to_the_study_reaches_the_run_and_stops_the_study(tmp_path, monkeypatch):
    """SIGTERM sent to the study alone is passed to the recipe, which stops; nothing is marked."""
    import os
    import signal
    import threading

    monkeypatch.setattr(runner, "RECIPES_DIR", tmp_path)
    (tmp_path / "cnn_train.py").write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
        "open(sys.argv[sys.argv.index('--output_dir') + 1] + '/started', 'w').close()\n"
        "time.sleep(120)\n"
    )
    folder = runner.plan(tmp_path / "study", ["relu"], [0])[0].folder

    def signal_once_started():
        for _ in range(600):
            if (folder / "started").exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            threading.Event().wait(0.1)

    threading.Thread(target=signal_once_started, daemon=True).start()
    with pytest.raises(runner.StudyInterrupted, match="SIGTERM"):
        runner.run_study("cnn", ["relu", "gem"], [0], tmp_path / "study")
    assert not (folder / runner.MARKER).exists()
    assert not (tmp_path / "study" / "runs" / "gem").exists()


def test_a_failed_run_stops_the_study_and_is_not_marked_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RECIPES_DIR", tmp_path)
    (tmp_path / "cnn_train.py").write_text("import sys; sys.exit(3)\n")
    with pytest.raises(RuntimeError, match="failed with exit code [1-9]"):
        runner.run_study("cnn", ["relu", "gem"], [0], tmp_path / "study")
    relu_run = runner.plan(tmp_path / "study", ["relu"], [0])[0]
    assert not relu_run.finished and not (relu_run.folder / runner.MARKER).exists()
    assert not (tmp_path / "study" / "runs" / "gem").exists()


def test_report_aggregates_seeds(tmp_path):
    runs = runner.plan(tmp_path, ["relu", "gem_n2"], [0, 1])
    finals = {("relu", 0): 0.5, ("relu", 1): 0.7, ("gem_n2", 0): 0.8, ("gem_n2", 1): 0.8}
    for run in runs:
        _finished_folder(run.folder)
        final = finals[(run.activation, run.seed)]
        records = [
            {"kind": "train", "step": 5, "images_per_second": 100.0},
            {"kind": "eval", "step": 5, "eval_accuracy": 0.9},  # best step of every curve
            {"kind": "eval", "step": 10, "eval_accuracy": final},
        ]
        (run.folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert report.pick_metric(runner.RECIPES["cnn"][1], runs) == "eval_accuracy"
    written = report.write_report(runs, tmp_path, "eval_accuracy", "test study")
    rows = {row["activation"]: row for row in written["rows"]}
    assert rows["relu"]["mean"] == pytest.approx(0.6)
    assert rows["relu"]["std"] == pytest.approx(math.sqrt(0.02))
    assert rows["gem_n2"]["std"] == 0.0 and rows["gem_n2"]["N"] == "2"
    assert rows["relu"]["best_step"] == 5 and rows["relu"]["N"] == "-"
    table = written["table"].read_text()
    assert "| relu | - | - | 0.6000 ± 0.1414 | 2 | 5 | 100 | 1 |" in table
    assert written["curves"].stat().st_size > 5_000


@pytest.mark.slow
def test_an_interrupted_cnn_study_resumes_without_repeating_runs(tmp_path):
    """Real recipe runs: the study is cut after its first run, then rerun in full."""
    tiny = ["--epochs", "1", "--max_train_samples", "128", "--max_eval_samples", "64"]
    runner.run_study("cnn", ["relu"], [0], tmp_path, tiny)  # the part that ran before a stop
    first = runner.plan(tmp_path, ["relu"], [0])[0]
    marker_before = (first.folder / runner.MARKER).read_text()
    runs = runner.run_study("cnn", ["relu", "gem"], [0], tmp_path, tiny)
    assert all(run.finished for run in runs)
    assert (first.folder / runner.MARKER).read_text() == marker_before
    assert (first.folder / "study_run.log").read_text().count("$ ") == 1
    rows = report.write_report(runs, tmp_path, "eval_accuracy")["rows"]
    assert [row["activation"] for row in rows] == ["relu", "gem"]
    assert all(0.0 <= row["mean"] <= 1.0 and row["seeds"] == 1 for row in rows)
