"""Results are data: one row per service x platform x step (and verification check). The table,
report.json, junit.xml, summary.md and the exit code all derive from these rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from orchestrator.errors import ExitCode, worst_exit_code
from orchestrator.models import Frozen

Step = Literal["resolve", "build", "verify", "push"]
Status = Literal["passed", "failed", "skipped", "up-to-date"]
ALL_PLATFORMS = "all"

_FAILURE_CODE: dict[str, ExitCode] = {
    "resolve": ExitCode.ENGINE,
    "build": ExitCode.BUILD,
    "verify": ExitCode.VERIFY,
    "push": ExitCode.PUBLISH,
}


class StepResult(Frozen):
    service: str
    platform: str = Field(description="linux/amd64, ... or 'all' for a step over every platform")
    step: Step
    status: Status
    message: str = ""
    duration_s: float = 0.0
    check: str | None = Field(default=None, description="verification check: arch, static, ...")
    emulated: bool | None = None
    digest: str | None = None
    evidence: str | None = None
    log: str | None = Field(default=None, description="path of the full log, relative to the report")


class ServiceSummary(Frozen):
    service: str
    image: str
    tags: tuple[str, ...] = ()
    status: Status
    digest: str | None = None
    platform_digests: dict[str, str] = Field(default_factory=dict)
    input_hash: str
    builder: str | None = None
    builder_digest: str | None = None
    runtime_digest: str | None = None
    exception: str | None = None
    pushed: bool = False
    reason: str = ""


class RunReport(Frozen):
    schema_version: int = 1
    project: str
    command: str
    started_at: str
    duration_s: float
    exit_code: int
    results: tuple[StepResult, ...]
    services: tuple[ServiceSummary, ...]
    warnings: tuple[str, ...] = ()


def exit_code_of(results: Iterable[StepResult]) -> int:
    """Lowest failing class wins (resolve 5, build 6, verify 7, push 8)."""
    return worst_exit_code(_FAILURE_CODE[r.step] for r in results if r.status == "failed")
