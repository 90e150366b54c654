"""Pretrain BERT (masked language modelling) with a GEM-family activation.

    accelerate launch recipes/bert_pretrain.py                  # tiny model, offline text, CPU
    accelerate launch recipes/bert_pretrain.py --activation gelu
    accelerate launch --config_file recipes/configs/ddp_8gpu.yaml recipes/bert_pretrain.py \\
        --model_size small --dataset_name wikitext --dataset_config_name wikitext-103-raw-v1 \\
        --tokenizer_name bert-base-uncased

The default activation is E-GEM with epsilon = 10 (``egem_eps10``), the paper's best for
BERT-small. Masking uses transformers' masked-language-model collator with a seed taken from
each batch, so a resumed run masks exactly as an uninterrupted one. ``--help`` lists the flags.
"""

import sys

from hf_gem.training.lm_recipe import main

if __name__ == "__main__":
    sys.exit(main("bert"))
