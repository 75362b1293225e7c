from __future__ import annotations

import subprocess
from typing import Any

import pytest


class _NoProcesses(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests are pure: any attempt to start a process (docker included) fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NoProcesses(f"unit tests may not start processes: {args[:1]!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr("os.system", refuse)
