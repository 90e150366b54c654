"""Model cards for published GEM checkpoints, rendered from the templates in ``model_cards/``.

The metadata goes through ``huggingface_hub.ModelCardData`` (license, library, tags, datasets
and a ``model-index`` built from the run's final validation metrics); the prose comes from a
Jinja template. :func:`check_card` re-parses a rendered card and applies the checks the Hub
applies to model-card metadata, offline.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..names import GemSpec, format_epsilon
from .curves import higher_is_better, summarize
from .run_folder import RunFolder, without_secrets

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "model_cards"
DEFAULT_TEMPLATE = "model_card.md"
PAPER_URL = "https://arxiv.org/abs/2604.21677"
# License ids the Hub accepts in card metadata ("other" covers any license not listed).
KNOWN_LICENSES = (
    "apache-2.0", "mit", "openrail", "openrail++", "bigscience-openrail-m",
    "creativeml-openrail-m", "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0",
    "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear",
    "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0",
    "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0",
    "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl",
    "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl",
    "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "llama2", "llama3", "gemma", "unknown", "other",
)
LIBRARIES = ("transformers", "timm")
# The Hub's task for each kind of head, by the end of the architecture's class name.
TASKS_BY_SUFFIX = (
    ("LMHeadModel", "text-generation"), ("ForCausalLM", "text-generation"),
    ("ForMaskedLM", "fill-mask"), ("ForPreTraining", "fill-mask"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
)
AUTO_CLASSES = {
    "text-generation": "AutoModelForCausalLM", "fill-mask": "AutoModelForMaskedLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "feature-extraction": "AutoModel",
}
DATASET_KEYS = ("dataset_name", "dataset", "corpus", "data", "train_file")
UNNAMED_DATA = "data not named in the training arguments"
METRIC_TYPES = (("perplexity", "perplexity"), ("accuracy", "accuracy"), ("top5", "accuracy"),
                ("top1", "accuracy"), ("loss", "loss"))
FAMILY_TAGS = {"gem": "gem", "egem": "e-gem", "segem": "se-gem"}


class CardError(ValueError):
    """A rendered model card whose metadata would not pass the Hub's checks."""


def task_for(run: RunFolder) -> str:
    if run.library == "timm":
        return "image-classification"
    for suffix, task in TASKS_BY_SUFFIX:
        if run.architecture.endswith(suffix):
            return task
    return "feature-extraction"


def dataset_of(run: RunFolder) -> str | None:
    """The data the run names (training arguments first, then the config), if it names any."""
    for source in (run.training_args, run.config):
        for key in DATASET_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def hub_dataset_id(dataset: str | None) -> str | None:
    """``dataset`` when it has the form of a Hub dataset id (a file path does not)."""
    if dataset is None or dataset.count("/") > 1 or dataset.startswith((".", "/")):
        return None
    try:
        validate_repo_id(dataset)
    except HFValidationError:
        return None
    return dataset


# ---------------------------------------------------------------------------------------------
# The activation, written out with its own N and epsilon.


def activation_formulas(spec: GemSpec | None, name: str | None) -> dict:
    """Name, general formula and the formula with this model's numbers substituted."""
    if spec is None:
        return {"title": f"{name} (a baseline, not a GEM-family activation)", "lines": [],
                "smoothness": "", "is_gem": False}
    power, epsilon = 2 * spec.order, format_epsilon(spec.epsilon)
    gate = f"F(t) = t^{power} / (t^{power} + {epsilon})   for t >= 0"
    if spec.variant == "segem":
        label = f"SE-GEM_{{N={spec.order}, eps={epsilon}}}(x)"
        lines = [
            f"{label} = x (1 + sign(x) F(|x|)) / 2",
            f"{label} = x/2 + |x|^{power + 1} / (2 (x^{power} + {epsilon}))",
        ]
    else:
        label = (f"GEM_{spec.order}(x)" if spec.variant == "gem"
                 else f"E-GEM_{{N={spec.order}, eps={epsilon}}}(x)")
        lines = [f"{label} = x F(x) = x^{power + 1} / (x^{power} + {epsilon})   for x > 0,"
                 f" and 0 for x <= 0"]
    lines.append(gate)
    order = 2 * spec.order
    smoothness = (f"C^{order}: its derivatives up to order {order} are continuous, and the "
                  f"derivative of order {order + 1} jumps at x = 0")
    return {"title": spec.display_name, "lines": lines, "smoothness": smoothness,
            "is_gem": True}


# ---------------------------------------------------------------------------------------------
# Metadata


def eval_results(run: RunFolder, dataset: str | None) -> list:
    """One EvalResult per final validation metric (training-set numbers are not results)."""
    results = []
    for key, values in sorted(summarize(run.metrics).items()):
        if key.lower().startswith("train"):
            continue
        metric_type = next(kind for word, kind in METRIC_TYPES if word in key.lower())
        results.append(EvalResult(
            task_type=task_for(run), dataset_type=hub_dataset_id(dataset) or "custom",
            dataset_name=dataset or UNNAMED_DATA,
            dataset_split="validation", metric_type=metric_type, metric_name=key,
            metric_value=values["final"],
        ))
    return results


def card_data_for(run: RunFolder, repo_id: str, license: str = "apache-2.0") -> ModelCardData:
    spec, dataset = run.spec, dataset_of(run)
    dataset_id, results = hub_dataset_id(dataset), eval_results(run, dataset)
    tags = ["hf-gem"]
    if spec is not None:
        tags += ["gem-activation", FAMILY_TAGS[spec.variant], spec.name]
    else:
        tags += ["baseline", str(run.activation)]
    tags += [run.model_type, task_for(run)]
    return ModelCardData(
        license=license, library_name=run.library, pipeline_tag=task_for(run),
        tags=list(dict.fromkeys(tags)), datasets=[dataset_id] if dataset_id else None,
        model_name=repo_id.split("/")[-1], eval_results=results or None,
        metrics=sorted({result.metric_type for result in results}) or None,
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def _scalar_arguments(arguments: dict) -> list:
    rows = []
    for key, value in sorted(without_secrets(arguments).items()):
        if isinstance(value, (str, int, float, bool)) or value is None:
            text = str(value)
            rows.append((key, text if len(text) <= 80 else text[:77] + "..."))
    return rows


def _result_rows(run: RunFolder) -> list:
    rows = []
    for key, values in sorted(summarize(run.metrics).items()):
        direction = "higher" if higher_is_better(key) else "lower"
        rows.append({"key": key, "final": f"{values['final']:.6g}",
                     "best": f"{values['best']:.6g}",
                     "best_at": values["best_at"], "final_at": values["final_at"],
                     "direction": direction})
    return rows


def render_card(run: RunFolder, repo_id: str, license: str = "apache-2.0",
                has_remote_code: bool = False, plot_file: str | None = None,
                template=None) -> ModelCard:
    """The model card for ``run`` published as ``repo_id``."""
    template_path = Path(template) if template else TEMPLATE_DIR / DEFAULT_TEMPLATE
    if not template_path.is_file():
        raise CardError(
            f"model card template {template_path} not found (the templates live in the "
            "project's model_cards/ folder; pass another template file to use one elsewhere)"
        )
    data = card_data_for(run, repo_id, license)
    task = task_for(run)
    context = dict(
        repo_id=repo_id, model_title=repo_id.split("/")[-1], library=run.library, task=task,
        auto_class=AUTO_CLASSES.get(task, "AutoModel"), architecture=run.architecture,
        model_type=run.model_type, parameters=f"{run.parameter_count:,}",
        activation_name=run.activation, activation=activation_formulas(run.spec, run.activation),
        dataset=dataset_of(run) or UNNAMED_DATA, arguments=_scalar_arguments(run.training_args),
        arguments_file=run.training_args_file, results=_result_rows(run),
        has_metrics=bool(run.metrics), plot_file=plot_file, has_tokenizer=run.has_tokenizer,
        has_remote_code=has_remote_code, paper_url=PAPER_URL,
        num_classes=run.config.get("num_classes"),
    )
    card = ModelCard.from_template(data, template_path=str(template_path), **context)
    # Template conditionals leave runs of blank lines; one blank line is enough anywhere.
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))


# ---------------------------------------------------------------------------------------------
# Checks


def check_card(text: str) -> ModelCard:
    """Parse a rendered card and check its metadata as the Hub would; return the card.

    Raises CardError naming every problem found.
    """
    try:
        card = ModelCard(text)
    except Exception as error:
        raise CardError(f"the model card's metadata does not parse: {error}") from None
    data = card.data.to_dict()
    problems = []
    if data.get("license") not in KNOWN_LICENSES:
        problems.append(f"license {data.get('license')!r} is not a license id the Hub knows "
                        "(use 'other' for a license the Hub does not list)")
    if data.get("library_name") not in LIBRARIES:
        problems.append(f"library_name {data.get('library_name')!r} is not one of {LIBRARIES}")
    tags = data.get("tags")
    if not tags or not all(isinstance(tag, str) and tag for tag in tags):
        problems.append("tags must be a non-empty list of strings")
    datasets = data.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        problems.append("datasets must be a list of dataset ids")
    for result in card.data.eval_results or []:
        value = result.metric_value
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"model-index metric {result.metric_name!r} has value {value!r}")
        if not (result.task_type and result.dataset_type and result.metric_type):
            problems.append("every model-index result needs a task, a dataset and a metric type")
    if problems:
        raise CardError("model card metadata: " + "; ".join(problems))
    return card
