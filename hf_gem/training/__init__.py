"""Training: the shared Accelerate loop, reproducible sampling, checkpoints, text data.

The loop (``hf_gem.training.loop``) is task-agnostic; the language-model pieces (text data,
tokenizer training, GPT-2 and BERT tasks) live beside it and the recipes under ``recipes/``
only choose between them.
"""

from .checkpoints import CheckpointError
from .loop import LoopResult, LoopSettings, TrainTask, count_tokens, train
from .sampling import EpochSampler, KeyedCollator, make_eval_dataloader, make_train_dataloader

__all__ = [
    "CheckpointError", "EpochSampler", "KeyedCollator", "LoopResult", "LoopSettings",
    "TrainTask", "count_tokens", "make_eval_dataloader", "make_train_dataloader", "train",
]
