"""Perplexity from summed negative log-likelihoods: exp(total NLL / total tokens).

Each example gives the sum of the negative log-likelihoods (natural log) of its predicted
tokens and how many tokens that sum covers. Summing before dividing weights every token
equally, however the tokens are spread over examples and processes.
"""

import math

import datasets
import evaluate

_DESCRIPTION = """Perplexity of a language model on held-out text, computed from per-example
sums of token negative log-likelihoods (natural log) and token counts. Also returns the mean
negative log-likelihood per token, which is the validation loss."""

_INPUTS = """
Args:
    nll_sum: for each example, the sum of the negative log-likelihoods of its tokens.
    num_tokens: for each example, the number of tokens in that sum.
Returns:
    perplexity: exp(sum(nll_sum) / sum(num_tokens)).
    mean_nll: sum(nll_sum) / sum(num_tokens).
Example:
    >>> metric = evaluate.load("hf_gem/metrics/perplexity")
    >>> metric.compute(nll_sum=[2.0, 4.0], num_tokens=[2, 4])["mean_nll"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({
                "nll_sum": datasets.Value("float64"),
                "num_tokens": datasets.Value("int64"),
            }),
        )

    def _compute(self, nll_sum, num_tokens):
        total_tokens = sum(num_tokens)
        if total_tokens <= 0:
            raise ValueError("perplexity needs at least one token (num_tokens sums to 0)")
        mean_nll = math.fsum(nll_sum) / total_tokens
        # exp overflows above ~709; such a perplexity is reported as infinite.
        perplexity = math.exp(mean_nll) if mean_nll < 709 else float("inf")
        return {"perplexity": perplexity, "mean_nll": mean_nll}
