"""The accuracy metric module shipped in hf_gem/metrics/accuracy, loaded offline by path."""

from __future__ import annotations

import pytest

from hf_gem.metrics import load_metric, metric_path


def test_accuracy_loads_by_path_and_counts_correctly():
    assert metric_path("accuracy").endswith("accuracy")
    accuracy = load_metric("accuracy")
    assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {
        "accuracy": 0.75}


def test_batches_weights_and_counts():
    accuracy = load_metric("accuracy")
    accuracy.add_batch(predictions=[1, 2], references=[1, 1])
    accuracy.add_batch(predictions=[3, 4, 4], references=[3, 4, 0])
    assert accuracy.compute()["accuracy"] == pytest.approx(3 / 5)
    weighted = accuracy.compute(predictions=[0, 1], references=[0, 0], sample_weight=[3, 1])
    assert weighted["accuracy"] == pytest.approx(0.75)
    counted = accuracy.compute(predictions=[5, 5, 5], references=[5, 5, 1], normalize=False)
    assert counted["accuracy"] == 2.0
