"""Files published next to a GEM checkpoint so that plain transformers can load it.

``gem_activations.py`` and ``modeling_gem.py`` are copied verbatim into a published
repository and referenced from ``auto_map`` in its ``config.json``. They import torch and
transformers only (never ``hf_gem``), and run only when a user passes
``trust_remote_code=True`` to ``from_pretrained``.
"""

from __future__ import annotations

from pathlib import Path

REMOTE_CODE_DIR = Path(__file__).parent
REMOTE_CODE_FILES = ("gem_activations.py", "modeling_gem.py")

# For each model type, the auto classes a published repository maps to the wrappers in
# modeling_gem.py. Other model types are published without remote code.
AUTO_MAPS = {
    "gpt2": {
        "AutoModel": "modeling_gem.GemGPT2Model",
        "AutoModelForCausalLM": "modeling_gem.GemGPT2LMHeadModel",
        "AutoModelForSequenceClassification": "modeling_gem.GemGPT2ForSequenceClassification",
    },
    "bert": {
        "AutoModel": "modeling_gem.GemBertModel",
        "AutoModelForMaskedLM": "modeling_gem.GemBertForMaskedLM",
        "AutoModelForPreTraining": "modeling_gem.GemBertForPreTraining",
        "AutoModelForSequenceClassification": "modeling_gem.GemBertForSequenceClassification",
    },
}


def auto_map_for(model_type: str) -> dict | None:
    """The ``auto_map`` for a model type, or None when no remote code covers it."""
    auto_map = AUTO_MAPS.get(model_type)
    return dict(auto_map) if auto_map is not None else None
