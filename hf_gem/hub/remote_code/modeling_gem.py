"""Standard transformers models whose activation is a GEM-family function.

Each class here is the transformers class of the same name without the ``Gem`` prefix; the
only difference is that it first teaches transformers the GEM activation named in the
config (see ``gem_activations.py``). Weights, configuration and outputs are those of the
standard model. The repository's ``config.json`` points to these classes from its
``auto_map``, which transformers follows only when the user passes
``trust_remote_code=True``.
"""

from __future__ import annotations

from transformers import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    GPT2Model,
)

from .gem_activations import register_activations_of


class GemActivationsMixin:
    """Registers the config's GEM activation before the standard model builds its layers."""

    def __init__(self, config, *args, **kwargs):
        register_activations_of(config)
        super().__init__(config, *args, **kwargs)


class GemGPT2Model(GemActivationsMixin, GPT2Model):
    pass


class GemGPT2LMHeadModel(GemActivationsMixin, GPT2LMHeadModel):
    pass


class GemGPT2ForSequenceClassification(GemActivationsMixin, GPT2ForSequenceClassification):
    pass


class GemBertModel(GemActivationsMixin, BertModel):
    pass


class GemBertForMaskedLM(GemActivationsMixin, BertForMaskedLM):
    pass


class GemBertForPreTraining(GemActivationsMixin, BertForPreTraining):
    pass


class GemBertForSequenceClassification(GemActivationsMixin, BertForSequenceClassification):
    pass
