"""`orch doctor` and the engine check before every build: each missing piece is its own message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from orchestrator.engine import Engine, EngineInfo
from orchestrator.errors import ConfigError, EngineError, EngineUnavailable
from orchestrator.models import platform_arch

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.engine.retry import RetryingRegistry

MIN_BUILDX = Version("0.13")


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    hint: str = ""


def engine_findings(info: EngineInfo, platforms: Sequence[str], builder: str | None) -> list[Finding]:
    out = [Finding("docker engine", True, f"Docker {info.server_version} (API {info.api_version})")]
    match = re.search(r"\bv?(\d+\.\d+(?:\.\d+)?)", info.buildx_version.replace("github.com/docker/buildx", ""))
    try:
        buildx_ok = match is not None and Version(match.group(1)) >= MIN_BUILDX
    except InvalidVersion:
        buildx_ok = False
    out.append(
        Finding(
            "buildx",
            buildx_ok,
            f"buildx {info.buildx_version}",
            "" if buildx_ok else f"multi-platform builds need buildx >= {MIN_BUILDX}",
        )
    )
    out.append(
        Finding(
            "containerd image store",
            info.containerd_store,
            "enabled" if info.containerd_store else "disabled",
            ""
            if info.containerd_store
            else 'set {"features":{"containerd-snapshotter":true}} in daemon.json (scripts/engine.sh does)',
        )
    )
    chosen = (
        next((b for b in info.builders if b.name == builder), None)
        if builder
        else (info.builders[0] if info.builders else None)
    )
    if builder and chosen is None:
        out.append(
            Finding(
                "builder",
                False,
                f"no buildx builder named {builder!r}",
                f"known: {', '.join(b.name for b in info.builders) or 'none'}",
            )
        )
    elif chosen is not None:
        served = set(chosen.platforms)
        for platform in platforms:
            native = platform == info.native_platform
            how = "native" if native else "emulated"
            if platform in served or native:
                out.append(Finding(f"builder {chosen.name}: {platform}", True, f"served ({how})"))
            else:
                out.append(
                    Finding(
                        f"builder {chosen.name}: {platform}",
                        False,
                        "not served",
                        "enable QEMU binfmt for it: scripts/engine.sh up",
                    )
                )
    for platform in platforms:
        if platform == info.native_platform:
            continue
        arch = platform_arch(platform)
        ok = arch in info.emulators
        out.append(
            Finding(
                f"binfmt {arch}",
                ok,
                "QEMU handler enabled" if ok else "no enabled QEMU handler",
                "" if ok else f"update-binfmts --enable qemu-{'aarch64' if arch == 'arm64' else arch}",
            )
        )
    return out


def require_engine(
    engine: Engine,
    platforms: Sequence[str],
    *,
    builder: str | None,
    registry: str | None,
    registry_client: RetryingRegistry | None,
) -> list[Finding]:
    info = engine.info()
    findings = engine_findings(info, platforms, builder)
    if registry and registry_client is not None:
        findings.append(_registry_finding(registry_client, registry))
    failed = [f for f in findings if not f.ok]
    if failed:
        raise EngineUnavailable(
            "the engine is not ready:\n  " + "\n  ".join(f"{f.check}: {f.detail}" for f in failed),
            hint="; ".join(f.hint for f in failed if f.hint) or None,
        )
    return findings


def _registry_finding(client: RetryingRegistry, registry: str) -> Finding:
    try:
        client.ping(registry)
    except EngineError as exc:
        return Finding(f"registry {registry}", False, exc.message, exc.hint or "")
    return Finding(f"registry {registry}", True, "reachable")


def run_doctor(file: Path, *, registry: str | None, builder: str | None, console: Console) -> None:
    from rich.table import Table

    from orchestrator.config import load_project
    from orchestrator.engine.docker import DockerEngine
    from orchestrator.engine.registry import RegistryClient
    from orchestrator.engine.retry import RetryingRegistry

    platforms: list[str] = ["linux/amd64", "linux/arm64"]
    if registry is None or builder is None:
        try:
            project = load_project(file)
        except ConfigError:
            project = None
        if project is not None:
            platforms = sorted({p for n in project.services for p in project.platforms_of(n)} or platforms)
            registry = registry or project.spec.registry.split("/")[0]
            builder = builder or project.spec.builder
    findings: list[Finding] = []
    try:
        info = DockerEngine(builder=builder).info()
    except EngineError as exc:
        findings.append(Finding("docker engine", False, exc.message, exc.hint or "run scripts/engine.sh up"))
    else:
        findings.extend(engine_findings(info, platforms, builder))
        for b in info.builders:
            # linux/amd64/v3 is a CPU level of the native architecture, not an emulated one
            native = [p for p in b.platforms if platform_arch(p) == platform_arch(info.native_platform)]
            emulated = [p for p in b.platforms if p not in native]
            findings.append(
                Finding(
                    f"builder {b.name} ({b.driver})",
                    True,
                    f"native: {', '.join(native) or '-'}; emulated: {', '.join(emulated) or '-'}",
                )
            )
    if registry:
        findings.append(_registry_finding(RetryingRegistry(RegistryClient()), registry))
    table = Table(title="orch doctor")
    for col in ("check", "status", "detail", "what to do"):
        table.add_column(col)
    for f in findings:
        table.add_row(f.check, "[green]ok[/green]" if f.ok else "[red]missing[/red]", f.detail, f.hint)
    console.print(table)
    failed = [f for f in findings if not f.ok]
    if failed:
        raise EngineUnavailable(
            f"{len(failed)} engine check{'s' if len(failed) > 1 else ''} failed: "
            + "; ".join(f"{f.check}: {f.detail}" for f in failed),
            hint="; ".join(dict.fromkeys(f.hint for f in failed if f.hint)) or None,
        )
