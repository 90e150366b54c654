"""Masked-token accuracy: the share of masked positions where the model's top guess is right.

Pass the predictions and the true ids of the masked positions only (the positions whose
label is not -100); positions labelled -100 that slip through are ignored.
"""

import datasets
import evaluate

IGNORED_LABEL = -100

_DESCRIPTION = """Accuracy of a masked language model on the tokens it had to reconstruct:
correct top-1 predictions divided by masked positions."""

_INPUTS = """
Args:
    predictions: predicted token ids, one per masked position.
    references: true token ids, one per masked position (-100 marks a position to ignore).
Returns:
    masked_accuracy: correct / counted positions.
    masked_tokens: the number of positions counted.
Example:
    >>> metric = evaluate.load("hf_gem/metrics/masked_accuracy")
    >>> metric.compute(predictions=[5, 7, 9], references=[5, 8, -100])["masked_accuracy"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class MaskedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({
                "predictions": datasets.Value("int64"),
                "references": datasets.Value("int64"),
            }),
        )

    def _compute(self, predictions, references):
        pairs = [(p, r) for p, r in zip(predictions, references) if r != IGNORED_LABEL]
        if not pairs:
            raise ValueError("masked_accuracy needs at least one masked position")
        correct = sum(1 for p, r in pairs if p == r)
        return {"masked_accuracy": correct / len(pairs), "masked_tokens": len(pairs)}
