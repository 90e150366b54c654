"""Shared fixtures: the 50-digit reference table and small helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REFERENCE_PATH = Path(__file__).parent / "data" / "gem_reference.json"


def load_reference_rows() -> list:
    return json.loads(REFERENCE_PATH.read_text())["rows"]


@pytest.fixture(scope="session")
def reference_rows() -> list:
    return load_reference_rows()
