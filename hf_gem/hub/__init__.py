"""Publish GEM checkpoints to the Hugging Face Hub, and load published ones.

- :func:`push` stages a training output folder (safetensors weights, config, tokenizer,
  training arguments, ``metrics.jsonl``, a plot of the curves, a model card and, for GEM
  transformers models, remote code) and uploads it in one commit through ``HfApi``.
- :func:`add_hub_arguments`, :func:`check_hub_arguments` and :func:`push_from_args` give
  every recipe the same ``--push_to_hub --hub_model_id ORG/NAME`` flags.
- :func:`load_pretrained` loads a published model by repository id or folder, from
  safetensors weights only.
- :func:`add_to_hub_cache` installs a folder into a local Hub cache, for machines that load
  by repository id without network access.
"""

from .cache import add_to_hub_cache
from .card import CardError, check_card, render_card
from .loading import LoadError, load_pretrained
from .publish import PushError, PushResult, check_repo_id, describe, push, resolve_token
from .recipe_args import add_hub_arguments, check_hub_arguments, push_from_args
from .run_folder import RunFolderError, read_run_folder
from .staging import StagingError, stage

__all__ = [
    "CardError", "LoadError", "PushError", "PushResult", "RunFolderError", "StagingError",
    "add_hub_arguments", "add_to_hub_cache", "check_card", "check_hub_arguments",
    "check_repo_id", "describe", "load_pretrained", "push", "push_from_args",
    "read_run_folder", "render_card", "resolve_token", "stage",
]
