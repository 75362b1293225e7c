"""`orch build`: prepare the plan, refuse what cannot be right, run it, report it.

Order: load → graph → resolve (or --locked) → choose builders → lint (errors stop here, exit 4) →
plan → engine checks → run (build, verify, push) → reports → exit code.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from orchestrator.errors import ExitCode, UsageError, worst_exit_code
from orchestrator.prepare import Prepared, begin, choose, finish, lint, require_builders, require_clean, resolve
from orchestrator.results import RunReport, exit_code_of

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.engine import Engine
    from orchestrator.runner import Observer, VerifierLike

log = structlog.get_logger("orch.build")


def git_revision(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class BuildCommand:
    file: Path
    only: Sequence[str] = ()
    arch: Sequence[str] = ()
    jobs: int = 2
    keep_going: bool = False
    locked: bool = False
    push: bool = False
    report: Path | None = None
    builder: str | None = None
    no_cache: bool = False
    force: bool = False
    command: str = "orch build"
    verifier: VerifierLike | None = None  # tests inject a failing verifier here
    builds_started: int = field(default=0, init=False)
    last_report: RunReport | None = field(default=None, init=False)

    def prepare(self) -> Prepared:
        if self.push and self.arch:
            raise UsageError(
                "--push with --arch is refused: a partial index must never replace a release tag",
                hint="build a platform subset without --push, or push all platforms",
            )
        from orchestrator.engine.registry import RegistryClient
        from orchestrator.engine.retry import RetryingRegistry

        prep = begin(self.file, self.only, self.arch)
        self._registry = RetryingRegistry(RegistryClient())
        self._engine = self._make_engine()
        resolve(prep, registry=self._registry, engine=self._engine, locked=self.locked)
        choose(prep)
        require_clean(lint(prep))
        require_builders(prep)
        finish(prep)
        return prep

    def _make_engine(self) -> Engine:
        from orchestrator.engine.docker import DockerEngine
        from orchestrator.engine.retry import RetryingEngine

        return RetryingEngine(DockerEngine(builder=self.builder or None))

    def run(self, console: Console) -> int:
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        prep = self.prepare()
        for warning in prep.warnings:
            log.info("policy.warning", message=warning)  # the JSON stream; humans read the line below
            console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        from orchestrator.doctor import require_engine
        from orchestrator.runner import Runner, RunOptions
        from orchestrator.verify.image import Verifier

        assert prep.plan is not None
        engine = self._engine
        platforms = sorted({p for s in prep.plan.services for p in s.platforms})
        require_engine(
            engine,
            platforms,
            builder=self.builder or prep.project.spec.builder,
            registry=prep.project.spec.registry.split("/")[0] if self.push else None,
            registry_client=self._registry,
        )
        verifier = self.verifier or Verifier(engine, self._registry, prep.policy.spec.advisories)
        if self.report:
            self.report.mkdir(parents=True, exist_ok=True)
        options = RunOptions(
            jobs=self.jobs,
            keep_going=self.keep_going,
            push=self.push,
            force=self.force,
            no_cache=self.no_cache,
            builder=self.builder or prep.project.spec.builder,
            report_dir=self.report,
            revision=git_revision(prep.project.root),
            source=str(prep.project.root),
        )
        runner = Runner(
            prep.project,
            prep.plan,
            engine=engine,
            registry=self._registry,
            verifier=verifier,
            options=options,
            observer=self._observer(prep, console),
        )
        live = getattr(runner.observer, "live", None)
        try:
            if live is not None:
                with live:
                    summaries = runner.run()
            else:
                summaries = runner.run()
        finally:
            self.builds_started = runner.builds_started
        code = worst_exit_code([exit_code_of(runner.results)])
        if code == 0 and any(s.status == "failed" for s in summaries):
            code = int(ExitCode.BUILD)
        report = RunReport(
            project=prep.project.spec.project,
            command=self.command,
            started_at=started.isoformat(timespec="seconds"),
            duration_s=round(time.monotonic() - t0, 2),
            exit_code=code,
            results=tuple(runner.results),
            services=tuple(summaries),
            warnings=tuple(prep.warnings),
        )
        self.last_report = report
        from orchestrator.report import render_summary, write_reports

        if self.report:
            write_reports(report, self.report)
        render_summary(report, console)
        return code

    def _observer(self, prep: Prepared, console: Console) -> Observer | None:
        if not console.is_terminal:
            return None
        from orchestrator.progress import LiveProgress

        assert prep.plan is not None
        return LiveProgress(prep.plan, console)
