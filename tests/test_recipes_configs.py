"""The Accelerate config files shipped for the paper's scale parse and say what they claim."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.mark.parametrize("name, kind, processes, machines, precision", [
    ("ddp_8gpu.yaml", DistributedType.MULTI_GPU, 8, 1, "bf16"),
    ("fsdp_2x8gpu.yaml", DistributedType.FSDP, 16, 2, "bf16"),
    ("cpu_1process.yaml", DistributedType.NO, 1, 1, "no"),
])
def test_config_files(name, kind, processes, machines, precision):
    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type == kind
    assert (config.num_processes, config.num_machines) == (processes, machines)
    assert str(config.mixed_precision) == precision


def test_fsdp_wraps_the_gpt2_block():
    from transformers.models.gpt2 import modeling_gpt2

    fsdp = load_config_from_file(str(CONFIGS / "fsdp_2x8gpu.yaml")).fsdp_config
    assert fsdp["fsdp_version"] == 2
    assert hasattr(modeling_gpt2, fsdp["fsdp_transformer_layer_cls_to_wrap"])
