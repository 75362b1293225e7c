"""The demo, end to end: the repository's own example release (services.yaml, policy/, dockerfiles/,
src/) built for linux/amd64 and linux/arm64, verified on both, pushed, and read back from the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import REGISTRY, ROOT, orch

from orchestrator.engine.registry import RegistryClient


def test_the_example_release_builds_verifies_and_publishes(tmp_path: Path, run_id: str) -> None:
    for part in ("services.yaml", "policy", "dockerfiles", "src"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("orch.lock"))
        else:
            shutil.copy(source, tmp_path / part)
    services = tmp_path / "services.yaml"
    registry = f"{REGISTRY}/{run_id}-demo"
    services.write_text(services.read_text().replace(f"registry: {REGISTRY}/kubernaut", f"registry: {registry}"))
    result = orch("build", "--push", "--report", "out", cwd=tmp_path, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    names = {s["service"] for s in report["services"]}
    assert len(names) >= 6
    client = RegistryClient()
    for summary in report["services"]:
        assert summary["status"] == "passed", summary
        info = client.resolve(f"{summary['image']}:{summary['tags'][0]}")
        assert info.digest == summary["digest"]
        assert info.platforms == summary["platform_digests"]
        assert sorted(info.platforms) == ["linux/amd64", "linux/arm64"]
    for row in report["results"]:
        assert row["status"] == "passed", row
    startups = [r for r in report["results"] if r["check"] == "startup"]
    assert {(r["platform"], r["emulated"]) for r in startups} == {("linux/amd64", False), ("linux/arm64", True)}
    wfe = next(s for s in report["services"] if s["service"] == "workflowexecution")
    assert wfe["exception"] == "EXC-001"
    assert wfe["builder"] == "quay.io/jordigilh/golang:1.25-bookworm"
    audit = orch("policy", "audit", cwd=tmp_path)
    assert "EXC-001" in audit.stdout
