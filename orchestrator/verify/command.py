"""`orch verify`: on the services of services.yaml (their images in the local store), or standalone on
any image reference (each platform pulled first). Exit 7 on any failed check."""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import ExitCode, UsageError
from orchestrator.graph import parse_arches
from orchestrator.models import Advisory, Startup, ToolchainRequirement
from orchestrator.results import ALL_PLATFORMS, RunReport, ServiceSummary, StepResult
from orchestrator.verify.checks import CheckResult
from orchestrator.verify.image import RuntimePin, Verifier, VerifyTarget, verification_rows

if TYPE_CHECKING:
    from rich.console import Console


def verify_command(
    file: Path,
    *,
    image: str | None,
    binaries: Sequence[str],
    platforms: Sequence[str],
    startup_cmd: str | None,
    expect: str,
    go_requirement: str | None,
    runtime: str | None,
    only: Sequence[str],
    arch: Sequence[str],
    report: Path | None,
    console: Console,
) -> int:
    from orchestrator.engine.docker import DockerEngine
    from orchestrator.engine.registry import RegistryClient
    from orchestrator.engine.retry import RetryingEngine, RetryingRegistry

    engine = RetryingEngine(DockerEngine())
    registry = RetryingRegistry(RegistryClient())
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    rows: list[StepResult] = []
    summaries: list[ServiceSummary] = []
    if image:
        if expect not in ("exit-0", "running"):
            raise UsageError(f"--expect {expect}: expected exit-0 or running")
        if go_requirement:
            ToolchainRequirement(name="go", version=go_requirement)  # validates the specifier
        plats = parse_arches(platforms) or tuple(sorted(registry.resolve(image).platforms))
        for platform in plats:
            engine.pull(image, platform)
        startup = Startup(command=tuple(shlex.split(startup_cmd)), expect=expect) if startup_cmd is not None else None
        advisories = _advisories(file)
        pin = None
        if runtime:  # pinned to what the registry serves now, reported with its digest
            served = registry.resolve(runtime)
            pin = RuntimePin(runtime, f"{runtime.split('@')[0]}@{served.digest}", served.digest)
        target = VerifyTarget(
            image=image,
            platforms=plats,
            binaries=tuple(binaries),
            toolchain="go" if go_requirement else None,
            requirement=go_requirement,
            startup=startup,
            runtime=pin,
            runtime_label_required=False,
        )
        index, verdicts = Verifier(engine, registry, advisories).verify(target)
        if platforms:  # a chosen subset: the index completeness check does not apply
            index = CheckResult("index", True, f"verified {', '.join(plats)} of the index")
        digest = engine.local_digest(image)
        rows.extend(verification_rows(image, index, verdicts, digest, time.monotonic() - t0))
        failed = any(r.status == "failed" for r in rows)
        summaries.append(
            ServiceSummary(
                service=image,
                image=image,
                status="failed" if failed else "passed",
                digest=digest,
                input_hash="",
                platform_digests={v.platform: v.manifest_digest for v in verdicts if v.manifest_digest},
            )
        )
        project_name = image
    else:
        from orchestrator.prepare import begin, choose, facts_from_lock, finish
        from orchestrator.runner import verify_target

        prep = begin(file, only, arch)
        facts_from_lock(prep)
        choose(prep)
        plan = finish(prep)
        verifier = Verifier(engine, registry, prep.policy.spec.advisories)
        project_name = plan.project
        for svc in plan.services:
            ref = svc.hash_ref
            spec = prep.project.services[svc.name]
            target = verify_target(svc, spec, ref)
            digest = engine.local_digest(ref)
            if digest is None:
                rows.append(
                    StepResult(
                        service=svc.name,
                        platform=ALL_PLATFORMS,
                        step="verify",
                        status="failed",
                        message=f"{ref} is not in the local store: run `orch build` first",
                    )
                )
                continue
            started_svc = time.monotonic()
            index, verdicts = verifier.verify(target)
            svc_rows = verification_rows(svc.name, index, verdicts, digest, time.monotonic() - started_svc)
            rows.extend(svc_rows)
            failed = any(r.status == "failed" for r in svc_rows)
            summaries.append(
                ServiceSummary(
                    service=svc.name,
                    image=svc.image,
                    tags=(svc.hash_tag,),
                    status="failed" if failed else "passed",
                    digest=digest,
                    input_hash=svc.input_hash,
                    platform_digests={v.platform: v.manifest_digest for v in verdicts if v.manifest_digest},
                )
            )
    code = int(ExitCode.VERIFY) if any(r.status == "failed" for r in rows) else 0
    result = RunReport(
        project=project_name,
        command="orch verify",
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - t0, 2),
        exit_code=code,
        results=tuple(rows),
        services=tuple(summaries),
    )
    from orchestrator.report import render_summary, write_reports

    if report:
        write_reports(result, report)
    render_summary(result, console)
    return code


def _advisories(file: Path) -> tuple[Advisory, ...]:
    """The policy's advisories when a services.yaml is at hand; standalone verify works without one."""
    from orchestrator.config import load_policy, load_project
    from orchestrator.errors import ConfigError

    try:
        project = load_project(file)
        return load_policy(project.policy_dir).spec.advisories
    except ConfigError:
        return ()
