"""The package's layering, enforced: pure stages never reach the engine, and only the gateway imports
python-on-whales (STYLE: one gateway to the engine; plan with pure code, then execute)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
PURE = [
    "config.py", "models.py", "errors.py", "graph.py", "dockerfile.py", "inputs.py", "lock.py", "plan.py",
    "results.py", "policy", "report", "verify/checks.py", "verify/elf.py", "verify/gobuildinfo.py",
    "verify/layout.py",
]  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def files(entry: str) -> list[Path]:
    target = PACKAGE / entry
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize("path", [p for entry in PURE for p in files(entry)], ids=lambda p: p.name)
def test_pure_modules_never_reach_the_engine(path: Path) -> None:
    bad = {n for n in imports_of(path) if n.startswith(("orchestrator.engine", "subprocess", "python_on_whales"))}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_only_the_gateway_imports_python_on_whales() -> None:
    users = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(n.startswith("python_on_whales") for n in imports_of(p))
    }
    assert users == {"engine/docker.py"}


def test_nothing_imports_the_cli() -> None:
    users = {p.name for p in PACKAGE.rglob("*.py") if "orchestrator.cli" in imports_of(p)}
    assert users <= {"__main__.py"}
