"""Accuracy as an ``evaluate`` module that loads offline, by path.

``evaluate.load("accuracy")`` fetches its script from the Hugging Face Hub; this module is
shipped inside hf-gem instead, so ``evaluate.load(hf_gem.metrics.metric_path("accuracy"))``
works without a network. It computes the fraction of predictions equal to their reference
(optionally weighted per example), or their count with ``normalize=False``, and returns it
under the key ``"accuracy"`` as the Hub module does.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = (
    "Accuracy: the proportion of predictions equal to their references, "
    "(TP + TN) / (TP + TN + FP + FN) for two classes."
)
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    normalize (bool): return the fraction correct (True, default) or the count correct.
    sample_weight (list of float): a weight per example; defaults to 1 for every example.
Returns:
    accuracy (float): between 0 and 1, or the (weighted) count when normalize=False.
Example:
    >>> metric = evaluate.load(hf_gem.metrics.metric_path("accuracy"))
    >>> metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
    {'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("int64"),
                "references": datasets.Value("int64"),
            }),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.shape != references.shape:
            raise ValueError(
                f"predictions and references differ in length: {predictions.shape} and "
                f"{references.shape}"
            )
        weights = np.ones(len(references)) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        correct = float(np.sum(weights * (predictions == references)))
        if normalize:
            total = float(np.sum(weights))
            return {"accuracy": correct / total if total else float("nan")}
        return {"accuracy": correct}
