"""Two tiers: tests/unit may not start processes or reach an engine (an autouse fixture makes any
attempt fail); tests/integration are marked `engine` and run against the real engine and registry,
skipped when there is none locally and failing when CI says the engine must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.engine)
