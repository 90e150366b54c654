"""Pretrain GPT-2 (causal language modelling) with a GEM-family activation.

    accelerate launch recipes/gpt2_pretrain.py                  # tiny model, offline text, CPU
    accelerate launch recipes/gpt2_pretrain.py --activation gelu_new
    accelerate launch --config_file recipes/configs/ddp_8gpu.yaml recipes/gpt2_pretrain.py \\
        --model_size 124m --dataset_name wikitext --dataset_config_name wikitext-103-raw-v1 \\
        --tokenizer_name gpt2

The default activation is GEM with N = 2 (``gem_n2``), the paper's choice for transformers.
Everything else (data, tokenizer, loop, checkpoints) is shared with the BERT recipe and lives
in ``hf_gem.training``; ``--help`` lists the flags.
"""

import sys

from hf_gem.training.lm_recipe import main

if __name__ == "__main__":
    sys.exit(main("gpt2"))
