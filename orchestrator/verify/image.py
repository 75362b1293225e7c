"""Verify a multi-platform image in the local store, before anything is pushed.

Files are read from `docker save` (an OCI layout with every platform: Docker 26's API has no
per-platform inspect or save), so the architecture, static and build-info checks need no container and
no emulation; the runtime-base check compares layer diff_ids with the pinned runtime's; the startup check
runs each platform with `docker run --platform`, emulated where the host is not that architecture.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from orchestrator.engine import Engine, StartupSpec, native_platform
from orchestrator.engine.retry import RetryingRegistry
from orchestrator.errors import EngineError
from orchestrator.models import Advisory, Startup
from orchestrator.results import ALL_PLATFORMS, StepResult
from orchestrator.verify.checks import (
    CheckResult,
    check_binary,
    check_index,
    check_runtime_base,
    check_startup,
)
from orchestrator.verify.layout import FileNotInImage, ImageLayout, LayoutError, PlatformImage

log = structlog.get_logger("orch.verify")


@dataclass(frozen=True)
class RuntimePin:
    name: str  # policy name
    pull: str  # pinned pull reference (mirror@index digest)
    digest: str


@dataclass(frozen=True)
class VerifyTarget:
    """What to verify: an image in the local store and what it must be."""

    image: str
    platforms: tuple[str, ...]
    binaries: tuple[str, ...]
    toolchain: str | None = None
    requirement: str | None = None
    allow_cgo: bool = False
    startup: Startup | None = None
    runtime: RuntimePin | None = None
    runtime_label_required: bool = True  # orch labels what it builds; an image it did not may lack it


@dataclass(frozen=True)
class PlatformVerdict:
    platform: str
    checks: tuple[CheckResult, ...]
    duration_s: float
    manifest_digest: str | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def emulated(self) -> bool | None:
        return next((c.emulated for c in self.checks if c.emulated is not None), None)


class Verifier:
    def __init__(self, engine: Engine, registry: RetryingRegistry, advisories: Sequence[Advisory]) -> None:
        self.engine = engine
        self.registry = registry
        self.advisories = tuple(advisories)
        self._base_layers: dict[tuple[str, str], tuple[str, ...]] = {}
        self.native = native_platform()

    def verify(self, target: VerifyTarget) -> tuple[CheckResult, list[PlatformVerdict]]:
        with tempfile.TemporaryDirectory(prefix="orch-verify-") as tmp:
            archive = Path(tmp) / "image.tar"
            self.engine.save(target.image, archive)
            layout = ImageLayout.open(archive)
            present = {p.platform: p for p in layout.platforms()}
            index = check_index({p: present[p].manifest_digest for p in present}, target.platforms)
            # platforms are verified side by side: most of the time is each platform's start-up
            with ThreadPoolExecutor(
                max_workers=max(1, len(target.platforms)), thread_name_prefix="orch-verify"
            ) as pool:
                verdicts = list(pool.map(lambda p: self._platform(layout, present, target, p), target.platforms))
        return index, verdicts

    def _platform(
        self, layout: ImageLayout, present: Mapping[str, PlatformImage], target: VerifyTarget, platform: str
    ) -> PlatformVerdict:
        start = time.monotonic()
        image = present.get(platform)
        if image is None:
            check = CheckResult("index", False, f"the image has no {platform} manifest")
            return PlatformVerdict(platform, (check,), time.monotonic() - start)
        checks: list[CheckResult] = []
        for path in target.binaries:
            try:
                data: bytes | None = layout.read_file(platform, path)
            except FileNotInImage:
                data = None
            except LayoutError as exc:
                checks.append(CheckResult("arch", False, f"{platform}: cannot read {path}: {exc}", target=path))
                continue
            checks.extend(
                check_binary(
                    path,
                    data,
                    platform=platform,
                    toolchain=target.toolchain,
                    requirement=target.requirement,
                    allow_cgo=target.allow_cgo,
                    advisories=self.advisories,
                )
            )
        pi = layout.image(platform)
        if target.runtime is not None:
            labels = (pi.config.get("config") or {}).get("Labels") or {}
            try:
                base = self._runtime_layers(target.runtime, platform)
            except EngineError as exc:
                checks.append(CheckResult("runtime-base", False, f"{platform}: {exc.message}"))
            else:
                checks.append(
                    check_runtime_base(
                        platform=platform,
                        image_diff_ids=pi.diff_ids,
                        base_diff_ids=base,
                        runtime_label=labels.get("io.orch.runtime.digest"),
                        require_label=target.runtime_label_required,
                        runtime_digest=target.runtime.digest,
                        runtime_name=target.runtime.name,
                    )
                )
        if target.startup is not None:
            startup = self._startup(target, platform)
            wrong_arch = [c for c in checks if c.check == "arch" and not c.passed]
            if wrong_arch and startup.emulated:
                # a foreign binary in an "emulated" platform image may have run natively: no proof
                startup = replace(
                    startup,
                    message=startup.message + " (but the binary is not built for this platform: "
                    "starting proves nothing, see the arch check)",
                )
            checks.append(startup)
        return PlatformVerdict(platform, tuple(checks), time.monotonic() - start, pi.manifest_digest)

    def _runtime_layers(self, runtime: RuntimePin, platform: str) -> tuple[str, ...]:
        key = (runtime.pull, platform)
        if key not in self._base_layers:
            self._base_layers[key] = self.registry.diff_ids(runtime.pull, platform)
        return self._base_layers[key]

    def _startup(self, target: VerifyTarget, platform: str) -> CheckResult:
        startup = target.startup
        assert startup is not None
        emulated = platform != self.native
        spec = StartupSpec(
            command=startup.command,
            expect=startup.expect,
            grace=startup.grace,
            http_port=startup.http.port if startup.http else None,
            http_path=startup.http.path if startup.http else "/healthz",
        )
        try:
            outcome = self.engine.run(target.image, platform, spec)
        except EngineError as exc:
            return CheckResult(
                "startup",
                False,
                f"{platform}: could not start: {exc.message}",
                evidence=exc.stderr[-2000:],
                emulated=emulated,
            )
        return check_startup(
            platform=platform,
            exit_code=outcome.exit_code,
            output=outcome.output,
            http_status=outcome.http_status,
            http_error=outcome.http_error,
            expect=startup.expect,
            grace=startup.grace,
            http_path=spec.http_path if startup.http else None,
            emulated=emulated,
        )


def check_row(service: str, platform: str, check: CheckResult, duration: float, digest: str | None) -> StepResult:
    return StepResult(
        service=service,
        platform=platform,
        step="verify",
        status="passed" if check.passed else "failed",
        check=check.check,
        message=("warning: " if check.warning else "") + check.message,
        duration_s=round(duration, 3),
        emulated=check.emulated,
        digest=digest,
        evidence=check.evidence or None,
    )


def verification_rows(
    service: str, index: CheckResult, verdicts: Sequence[PlatformVerdict], digest: str | None, duration: float
) -> list[StepResult]:
    """Result rows of one image's verification; the index row carries the verification's wall time
    (platforms are verified side by side)."""
    rows = [check_row(service, ALL_PLATFORMS, index, duration, digest)]
    for verdict in verdicts:
        rows.extend(
            check_row(service, verdict.platform, c, verdict.duration_s, verdict.manifest_digest) for c in verdict.checks
        )
    return rows
