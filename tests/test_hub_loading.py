"""Published models load by repository id from an offline Hub cache, with exact logits.

The folders a push would upload are staged, installed into a Hub cache in
huggingface_hub's layout, and loaded in a fresh Python process with ``HF_HUB_OFFLINE=1``:
once with hf_gem (the standard transformers and timm loaders, and hf_gem's own), and once
with ``import hf_gem`` blocked, through the repository's remote code. Pickled weights are
refused, and never unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_hub_models import image_inputs, make_bert_run, make_cnn_run, make_gpt2_run, text_inputs

import hf_gem
from hf_gem.hub import LoadError, add_to_hub_cache, load_pretrained, push
from hf_gem.hub.remote_code import gem_activations

ORG = "gem-test"

# Run in a fresh process: argv = [mode, work folder]. Writes <mode>.safetensors (logits)
# and <mode>.json (what happened) into the work folder.
LOADER_SCRIPT = r"""
import json, os, sys
mode, work = sys.argv[1], sys.argv[2]
if mode == "without-hf-gem":
    class BlockHfGem:
        def find_spec(self, name, path=None, target=None):
            if name == "hf_gem" or name.startswith("hf_gem."):
                raise ImportError("hf_gem is blocked in this process")
    sys.meta_path.insert(0, BlockHfGem())
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

inputs, logits, report = load_file(os.path.join(work, "inputs.safetensors")), {}, {}
text, images = inputs["text"], inputs["images"]
torch.set_grad_enabled(False)
if mode == "with-hf-gem":
    import timm
    import hf_gem, hf_gem.models
    from hf_gem.hub import load_pretrained
    logits["gpt2"] = AutoModelForCausalLM.from_pretrained("ORG/gpt2")(text).logits
    logits["bert"] = AutoModelForMaskedLM.from_pretrained("ORG/bert")(text).logits
    logits["cnn"] = timm.create_model("hf-hub:ORG/cnn", pretrained=True).eval()(images)
    logits["gpt2_helper"] = load_pretrained("ORG/gpt2")(text).logits
    logits["bert_helper"] = load_pretrained("ORG/bert")(text).logits
    logits["cnn_helper"] = load_pretrained("ORG/cnn")(images)
    for name in ("pickled", "mixed"):
        try:
            load_pretrained("ORG/" + name)
            report[name] = "loaded"
        except OSError as error:
            report[name] = f"{type(error).__name__}: {error}"
else:
    for name, auto_class in (("gpt2", AutoModelForCausalLM), ("bert", AutoModelForMaskedLM)):
        try:
            auto_class.from_pretrained("ORG/" + name)
            report[name + "_untrusted"] = "loaded"
        except Exception as error:
            report[name + "_untrusted"] = f"{type(error).__name__}: {error}"
        model = auto_class.from_pretrained("ORG/" + name, trust_remote_code=True)
        report[name + "_class"] = type(model).__name__
        logits[name] = model(text).logits
    report["hf_gem_imported"] = sorted(m for m in sys.modules if m.split(".")[0] == "hf_gem")
outputs = {key: value.contiguous() for key, value in logits.items()}
save_file(outputs, os.path.join(work, mode + ".safetensors"))
with open(os.path.join(work, mode + ".json"), "w") as handle:
    json.dump(report, handle)
""".replace("ORG", ORG)


class WritesAMarkerWhenUnpickled:
    """A stand-in for malicious pickled weights: unpickling it creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_pickled_weights(folder: Path, marker: Path) -> None:
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump(WritesAMarkerWhenUnpickled(marker), handle)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Trained models, their staged uploads installed in a Hub cache, and reference logits."""
    root = tmp_path_factory.mktemp("published")
    cache, marker = root / "hub-cache", root / "unpickled.marker"
    models = {}
    for name, make in (("gpt2", make_gpt2_run), ("bert", make_bert_run), ("cnn", make_cnn_run)):
        models[name] = make(root / f"{name}-run")
        staged = root / f"{name}-staged"
        push(root / f"{name}-run", f"{ORG}/{name}", dry_run=True, stage_dir=staged)
        add_to_hub_cache(staged, f"{ORG}/{name}", cache_dir=cache)

    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copyfile(root / "gpt2-staged" / "config.json", pickled / "config.json")
    write_pickled_weights(pickled, marker)
    add_to_hub_cache(pickled, f"{ORG}/pickled", cache_dir=cache)
    mixed = root / "mixed"
    shutil.copytree(root / "gpt2-staged", mixed)
    write_pickled_weights(mixed, marker)
    add_to_hub_cache(mixed, f"{ORG}/mixed", cache_dir=cache)

    text, images = text_inputs(), image_inputs()
    save_file({"text": text, "images": images}, str(root / "inputs.safetensors"))
    with torch.no_grad():
        reference = {"gpt2": models["gpt2"](text).logits, "bert": models["bert"](text).logits,
                     "cnn": models["cnn"](images)}
    return {"root": root, "cache": cache, "marker": marker, "reference": reference}


def run_loader(published, mode: str):
    root = published["root"]
    script = root / "load_published.py"
    script.write_text(LOADER_SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(published["cache"]),
               HF_HOME=str(root / f"hf-home-{mode}"), TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run([sys.executable, str(script), mode, str(root)], env=env,
                               cwd=root, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    logits = load_file(str(root / f"{mode}.safetensors"))
    return logits, json.loads((root / f"{mode}.json").read_text())


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() == 0.0


def test_loading_by_repo_id_offline_gives_the_trained_logits(published):
    logits, report = run_loader(published, "with-hf-gem")
    for name in ("gpt2", "bert", "cnn"):
        assert_same(logits[name], published["reference"][name])
        assert_same(logits[f"{name}_helper"], published["reference"][name])
    assert "no safetensors weights" in report["pickled"]
    assert "pytorch_model.bin: pickle files are refused" in report["pickled"]
    assert report["mixed"] == "loaded"  # from its safetensors file; the pickle stays shut
    assert not published["marker"].exists()


def test_remote_code_loads_without_hf_gem_and_gives_the_same_logits(published):
    logits, report = run_loader(published, "without-hf-gem")
    assert report["hf_gem_imported"] == []
    # Without trust_remote_code, plain transformers does not know the activation.
    assert report["gpt2_untrusted"].startswith("KeyError") and "gem_n2" in report[
        "gpt2_untrusted"]
    assert "egem_eps10" in report["bert_untrusted"]
    assert report["gpt2_class"] == "GemGPT2LMHeadModel"
    assert report["bert_class"] == "GemBertForMaskedLM"
    for name in ("gpt2", "bert"):
        assert_same(logits[name], published["reference"][name])


def test_local_folders_with_only_pickled_weights_are_refused(tmp_path):
    write_pickled_weights(tmp_path, tmp_path / "marker")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(LoadError, match="pytorch_model.bin: pickle files are refused"):
        load_pretrained(tmp_path)
    assert not (tmp_path / "marker").exists()


def test_the_cache_layout_is_huggingface_hubs(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text("{}")
    snapshot = add_to_hub_cache(source, "org/name", cache_dir=tmp_path / "cache")
    repo = tmp_path / "cache" / "models--org--name"
    assert (repo / "refs" / "main").read_text() == snapshot.name and len(snapshot.name) == 40
    assert (snapshot / "config.json").is_symlink()
    assert (snapshot / "config.json").resolve().parent == (repo / "blobs").resolve()


@pytest.mark.parametrize("name", ["gem", "gem_n2", "gem_n3", "egem_eps10", "egem_n2_eps1e-4",
                                  "segem", "segem_n2_eps1e-4", "segem_n3_eps0.25"])
def test_remote_activation_is_bitwise_equal_to_hf_gem(name):
    """The published file computes exactly what hf_gem computes: values and gradients."""
    spec = hf_gem.parse_name(name)
    assert gem_activations.parse_gem_name(name) == (spec.variant, spec.order, spec.epsilon)
    remote = gem_activations.GemActivation(spec.variant, spec.order, spec.epsilon)
    local = hf_gem.activation_from_name(name)
    generator = torch.Generator().manual_seed(0)
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-30,
                            -1e-30, 3e38, -3e38, 1e20, -1e20])
    base = torch.cat([torch.randn(20000, generator=generator) * 3, special])
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        x = base.to(dtype)
        assert torch.equal(remote(x).nan_to_num(7.0), local(x).nan_to_num(7.0)), dtype
        grad = torch.randn(x.shape, generator=generator).to(dtype)
        x_remote, x_local = x.clone().requires_grad_(), x.clone().requires_grad_()
        remote(x_remote).backward(grad)
        local(x_local).backward(grad)
        assert torch.equal(x_remote.grad.nan_to_num(7.0), x_local.grad.nan_to_num(7.0)), dtype


def test_remote_name_parser_rejects_what_hf_gem_rejects():
    for name in ("gem_eps10", "gem_n0", "egem_eps-1", "egem_epsnan", "relu", "gemma", None):
        assert gem_activations.parse_gem_name(name) is None
    assert gem_activations.parse_gem_name("SE-GEM_n2_eps1e-4") == ("segem", 2, 1e-4)
