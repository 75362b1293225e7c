"""orch doctor against the engine scripts/engine.sh brought up, and against a registry that is not there."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import REGISTRY, orch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_passes_on_the_engine_the_script_brought_up(tmp_path: Path) -> None:
    result = orch("doctor", "--registry", REGISTRY, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "buildx" in out
    assert "containerd image store" in out
    assert "binfmt arm64" in out
    assert "linux/arm64" in out
    assert "emulated" in out
    assert f"registry {REGISTRY}" in out


def test_doctor_fails_with_exit_5_when_no_registry_listens(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there; the shared registry is untouched
    result = orch("doctor", "--registry", address, cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    assert f"registry {address}" in result.stderr
    assert "not reachable" in result.stderr
