#!/usr/bin/env python
"""Compare activations on one recipe, as the paper does; the same as ``hf-gem compare``.

    python recipes/compare.py --recipe gpt2 --seeds 0                       # the paper's set
    python recipes/compare.py --recipe cnn --seeds 0 1 2 -- --epochs 10
    python recipes/compare.py --recipe gpt2 --activations gelu_new gem_n2 \\
        --launcher_args "--num_processes 8" -- --model_size 124m --dataset_name wikitext \\
        --dataset_config_name wikitext-103-raw-v1

Each (activation, seed) run is launched with ``accelerate launch`` into
``<study_dir>/runs/<activation>/seed_<seed>``; finished runs are skipped and interrupted
ones resumed, so rerunning the same command completes an interrupted study. The study
folder receives results.md, results.json, validation_curves.png and activations.png.
"""

import sys

from hf_gem.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
