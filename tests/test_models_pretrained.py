"""Saving a trained image model as a folder and loading it back."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from hf_gem.models import load_pretrained, read_config, save_pretrained


def trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    # Move weights and batch-norm statistics away from their initial values.
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.rand_like(tensor))
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = trained_looking(
        timm.create_model("cifar_resnet20", act_layer="segem_eps1e-4", num_classes=100)
    )
    save_pretrained(model, tmp_path / "model", extra_config={"dataset": "cifar100"})
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architecture"] == "cifar_resnet20"
    assert config["activation"] == "segem_eps1e-4"
    assert (config["num_classes"], config["in_chans"], config["dataset"]) == (100, 3, "cifar100")
    assert (tmp_path / "model" / "model.safetensors").is_file()

    loaded = load_pretrained(tmp_path / "model").eval()
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)
    assert type(loaded.act1).__name__ == "SEGEM"


def test_timm_reads_the_folder_too(tmp_path):
    model = trained_looking(timm.create_model("mnist_cnn", act_layer="egem_eps1e-4"))
    data_config = dict(input_size=(1, 8, 8), mean=(0.3,), std=(0.4,))
    save_pretrained(model, tmp_path, data_config=data_config)
    assert read_config(tmp_path)["pretrained_cfg"]["input_size"] == [1, 8, 8]

    by_timm = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    assert type(by_timm.hidden_act).__name__ == "EGEM"
    assert by_timm.pretrained_cfg["mean"] == [0.3]
    images = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(by_timm(images), model(images), rtol=0, atol=0)


def test_activation_name_is_required(tmp_path):
    model = timm.create_model("mnist_cnn", act_layer=torch.nn.ReLU)
    with pytest.raises(ValueError, match="activation"):
        save_pretrained(model, tmp_path)
    save_pretrained(model, tmp_path, activation="relu")
    assert read_config(tmp_path)["activation"] == "relu"


def test_loading_a_folder_without_the_files_names_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json, model.safetensors"):
        load_pretrained(tmp_path)
