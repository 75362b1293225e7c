"""Execute a BuildPlan: waves in order, services of a wave concurrently (bounded), each service built
for all its platforms in one buildx invocation, verified, and only then published.

A failed service marks its dependents skipped; without keep-going no new build starts after a failure.
Unchanged services (same input hash, image present and recorded as verified) are up to date: no build,
no verification, and a push only if the registry lacks them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from orchestrator.config import Project
from orchestrator.engine import BuildRequest, Engine
from orchestrator.engine.retry import RetryingRegistry
from orchestrator.errors import EngineError, Interrupted, OrchError, PublishFailed
from orchestrator.models import Service
from orchestrator.plan import BuildPlan, ServicePlan
from orchestrator.results import ALL_PLATFORMS, ServiceSummary, Status, Step, StepResult
from orchestrator.verify.checks import CheckResult, check_index
from orchestrator.verify.image import PlatformVerdict, RuntimePin, VerifyTarget, verification_rows

log = structlog.get_logger("orch.runner")
STATE_FILE = ".orch/state.json"


class VerifierLike(Protocol):
    def verify(self, target: VerifyTarget) -> tuple[CheckResult, list[PlatformVerdict]]: ...


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 2
    keep_going: bool = False
    push: bool = False
    force: bool = False
    no_cache: bool = False
    builder: str | None = None
    report_dir: Path | None = None
    revision: str | None = None
    source: str | None = None
    network: str | None = None


@dataclass
class ServiceState:
    plan: ServicePlan
    status: Status = "skipped"
    digest: str | None = None
    reason: str = ""
    pushed: bool = False
    platform_digests: dict[str, str] = field(default_factory=dict)


class Observer(Protocol):
    def update(self, service: str, platform: str, state: str) -> None: ...


class _NullObserver:
    def update(self, service: str, platform: str, state: str) -> None:
        return None


class VerifiedState:
    """Which image digests passed verification, recorded in .orch/state.json under the project."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self.data: dict[str, dict[str, str]] = json.loads(path.read_text()).get("verified", {})
        except (OSError, ValueError):
            self.data = {}

    def verified(self, digest: str, input_hash: str) -> bool:
        entry = self.data.get(digest)
        return entry is not None and entry.get("input_hash") == input_hash

    def record(self, digest: str, service: str, input_hash: str) -> None:
        with self._lock:
            self.data[digest] = {
                "service": service,
                "input_hash": input_hash,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"verified": self.data}, indent=1, sort_keys=True))
            tmp.replace(self.path)


class Runner:
    def __init__(
        self,
        project: Project,
        plan: BuildPlan,
        *,
        engine: Engine,
        registry: RetryingRegistry,
        verifier: VerifierLike | None,
        options: RunOptions,
        observer: Observer | None = None,
    ) -> None:
        self.project = project
        self.plan = plan
        self.engine = engine
        self.registry = registry
        self.verifier = verifier
        self.options = options
        self.observer = observer or _NullObserver()
        self.results: list[StepResult] = []
        self.states = {s.name: ServiceState(s) for s in plan.services}
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._failed_any = False
        self.state = VerifiedState(project.root / STATE_FILE)
        self.builds_started = 0

    # -- results ---------------------------------------------------------------------------------

    def _add(self, row: StepResult) -> None:
        with self._lock:
            self.results.append(row)
        self.observer.update(row.service, row.platform, f"{row.step}:{row.status}")
        log.info(
            "step",
            service=row.service,
            platform=row.platform,
            step=row.step,
            status=row.status,
            check=row.check,
            message=row.message,
            duration_s=row.duration_s,
        )

    def _each_platform(
        self,
        svc: ServicePlan,
        step: Step,
        status: Status,
        message: str,
        *,
        duration_s: float = 0.0,
        logs: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        """One row per platform of the service for a step that covers all its platforms at once
        (`logs`: each platform's log file, relative to the report)."""
        for platform in svc.platforms:
            self._add(
                StepResult(
                    service=svc.name,
                    platform=platform,
                    step=step,
                    status=status,
                    message=message,
                    duration_s=round(duration_s, 2),
                    log=(logs or {}).get(platform),
                    **extra,
                )
            )

    def _fail(self, state: ServiceState, reason: str) -> None:
        state.status, state.reason = "failed", reason
        with self._lock:
            self._failed_any = True

    def _skip(self, svc: ServicePlan, reason: str) -> None:
        state = self.states[svc.name]
        state.status, state.reason = "skipped", reason
        self._each_platform(svc, "build", "skipped", reason)

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> list[ServiceSummary]:
        pending = [name for wave in self.plan.waves for name in wave]
        running: dict[Future[None], str] = {}
        done: set[str] = set()
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.jobs), thread_name_prefix="orch-build")
        try:
            while pending or running:
                for name in list(pending):
                    svc = self.plan.service(name)
                    failed_deps = [
                        d for d in svc.depends_on if self.states[d].status in ("failed", "skipped") and d in done
                    ]
                    if failed_deps:
                        pending.remove(name)
                        done.add(name)
                        self._skip(svc, f"dependency failed: {', '.join(failed_deps)}")
                        continue
                    if self._failed_any and not self.options.keep_going:
                        pending.remove(name)
                        done.add(name)
                        self._skip(svc, "not started: an earlier service failed (use --keep-going)")
                        continue
                    if all(d in done for d in svc.depends_on) and len(running) < self.options.jobs:
                        pending.remove(name)
                        running[pool.submit(self._service, svc)] = name
                if not running:
                    if pending:  # nothing can start: only possible if dependencies are outside the plan
                        for name in pending:
                            self._skip(self.plan.service(name), "dependency not in this plan")
                        pending.clear()
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    done.add(name)
                    future.result()
        except (KeyboardInterrupt, Interrupted):
            # buildx and the containers got the same SIGINT; wait for the threads to clean up, push nothing
            self._cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise Interrupted("interrupted: builds stopped, temporary containers removed, nothing pushed") from None
        finally:
            pool.shutdown(wait=True)
            self.state.save()
        return [self._summary(s) for s in self.states.values()]

    def _service(self, svc: ServicePlan) -> None:
        state = self.states[svc.name]
        try:
            self._service_inner(svc, state)
        except OrchError as exc:
            self._fail(state, exc.message)
            log.error("service.failed", service=svc.name, error=exc.message)
        except Exception as exc:  # a bug must not hang the other builds; it is reported as a failure
            self._fail(state, f"internal error: {exc!r}")
            log.exception("service.crashed", service=svc.name)
            self._add(
                StepResult(
                    service=svc.name,
                    platform=ALL_PLATFORMS,
                    step="build",
                    status="failed",
                    message=f"internal error: {exc!r}",
                )
            )

    def ref(self, svc: ServicePlan, tag: str | None = None) -> str:
        return f"{svc.image}:{tag}" if tag else svc.hash_ref

    def tags(self, svc: ServicePlan) -> list[str]:
        """Every reference the image gets: the input-hash tag first, the service's tags, the revision."""
        refs = [self.ref(svc), *(self.ref(svc, t) for t in svc.tags)]
        if self.options.revision:
            refs.append(self.ref(svc, self.options.revision[:12]))
        return list(dict.fromkeys(refs))

    def _service_inner(self, svc: ServicePlan, state: ServiceState) -> None:
        ref = self.ref(svc)
        existing = None if self.options.force else self.engine.local_digest(ref)
        if existing and self.state.verified(existing, self._verified_key(svc)):
            state.digest, state.status = existing, "up-to-date"
            self._each_platform(svc, "build", "up-to-date", f"{ref} unchanged", digest=existing)
            self._each_platform(svc, "verify", "up-to-date", "verified earlier (recorded by digest)", digest=existing)
        else:
            if not self._build(svc, state, ref):
                return
            if not self._verify(svc, state, ref):
                return
        if self.options.push and not self._cancel.is_set():
            self._push(svc, state, ref)
        elif state.status != "up-to-date":
            state.status = "passed"

    def _build(self, svc: ServicePlan, state: ServiceState, ref: str) -> bool:
        contexts = dict(svc.build_contexts)
        labels = dict(svc.labels)
        for dep in svc.depends_on:
            dep_state = self.states[dep]
            dep_ref = self.ref(dep_state.plan)
            contexts[dep] = f"docker-image://{dep_ref}"
            if labels.get("org.opencontainers.image.base.name") == dep_state.plan.image and dep_state.digest:
                labels["org.opencontainers.image.base.digest"] = dep_state.digest
        labels["org.opencontainers.image.created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if self.options.revision:
            labels["org.opencontainers.image.revision"] = self.options.revision
        if self.options.source:
            labels["org.opencontainers.image.source"] = self.options.source
        tags = self.tags(svc)
        request = BuildRequest(
            service=svc.name,
            context=self.project.root / svc.context,
            dockerfile=self.project.root / svc.dockerfile,
            platforms=svc.platforms,
            tags=tuple(tags),
            build_args=svc.build_args,
            build_contexts=contexts,
            labels=labels,
            target=svc.target,
            no_cache=self.options.no_cache,
            builder=self.options.builder,
            network=self.options.network,
        )
        for platform in svc.platforms:
            self.observer.update(svc.name, platform, "building")
        start = time.monotonic()
        lines: list[str] = []
        with self._lock:
            self.builds_started += 1
        try:
            outcome = self.engine.build(request, lines.append)
        except EngineError as exc:
            output = lines or exc.stderr.splitlines()
            self._each_platform(
                svc,
                "build",
                "failed",
                exc.message,
                duration_s=time.monotonic() - start,
                logs=self._write_logs(svc, output),
                evidence=_tail(output),
            )
            raise
        state.digest = outcome.digest
        self._each_platform(
            svc,
            "build",
            "passed",
            f"built {ref}",
            duration_s=time.monotonic() - start,
            logs=self._write_logs(svc, lines),
            digest=outcome.digest,
        )
        return True

    def _write_logs(self, svc: ServicePlan, lines: Sequence[str]) -> dict[str, str]:
        if self.options.report_dir is None:
            return {}
        out: dict[str, str] = {}
        per_platform = split_log_by_platform(lines, svc.platforms)
        for platform, text in per_platform.items():
            rel = f"logs/{svc.name}/{platform.replace('/', '-')}.log"
            path = self.options.report_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            out[platform] = rel
        return out

    def _target(self, svc: ServicePlan, ref: str) -> VerifyTarget:
        return verify_target(svc, self.project.services[svc.name], ref)

    def _verified_key(self, svc: ServicePlan) -> str:
        """What a recorded verification vouches for: the inputs and what was checked (a changed
        `binaries` or `startup` re-verifies an unchanged image)."""
        spec = repr(replace(self._target(svc, ""), image=""))
        return f"{svc.input_hash}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"

    def _verify(self, svc: ServicePlan, state: ServiceState, ref: str) -> bool:
        if self.verifier is None:
            state.status = "passed"
            return True
        for platform in svc.platforms:
            self.observer.update(svc.name, platform, "verifying")
        target = self._target(svc, ref)
        start = time.monotonic()
        try:
            index, verdicts = self.verifier.verify(target)
        except OrchError as exc:
            self._each_platform(svc, "verify", "failed", exc.message, duration_s=time.monotonic() - start)
            self._fail(state, exc.message)
            return False
        for row in verification_rows(svc.name, index, verdicts, state.digest, time.monotonic() - start):
            self._add(row)
        state.platform_digests.update({v.platform: v.manifest_digest for v in verdicts if v.manifest_digest})
        failed = ([] if index.passed else [index]) + [c for v in verdicts for c in v.checks if not c.passed]
        if failed:
            self._fail(state, failed[0].message)
            return False
        assert state.digest is not None
        self.state.record(state.digest, svc.name, self._verified_key(svc))
        state.status = "passed"
        return True

    def _push(self, svc: ServicePlan, state: ServiceState, ref: str) -> None:
        assert state.digest is not None
        start = time.monotonic()
        for platform in svc.platforms:
            self.observer.update(svc.name, platform, "pushing")
        try:
            remote = self.registry.exists(ref)
            extra = self.tags(svc)[1:]
            if remote != state.digest:
                todo = extra
                self.engine.push(ref)
                message = f"pushed {ref}"
            else:
                todo = [each for each in extra if self.registry.exists(each) != state.digest]
                message = f"{ref} already in the registry"
            for each in todo:
                # the image may have been built under another revision: tag this one from the verified
                # hash tag (same digest) before pushing it
                self.engine.tag(ref, each)
                self.engine.push(each)
            info = self.registry.resolve(ref)
        except EngineError as exc:
            self._each_platform(svc, "push", "failed", exc.message, duration_s=time.monotonic() - start)
            self._fail(state, exc.message)
            raise PublishFailed(exc.message) from None
        readback = check_index(info.platforms, svc.platforms, len(info.attestations))
        problems = [] if readback.passed else [readback.message]
        if info.digest != state.digest:
            problems.append(f"registry serves {info.digest} for {ref}, built {state.digest}")
        for platform, digest in state.platform_digests.items():
            if info.platforms.get(platform) not in (None, digest):
                problems.append(f"{platform}: registry has {info.platforms.get(platform)}, verified {digest}")
        duration = round(time.monotonic() - start, 2)
        status: Status = "failed" if problems else ("passed" if remote != state.digest else "up-to-date")
        for platform in svc.platforms:
            self._add(
                StepResult(
                    service=svc.name,
                    platform=platform,
                    step="push",
                    status=status,
                    message="; ".join(problems) or message,
                    duration_s=duration,
                    digest=info.platforms.get(platform),
                )
            )
        if problems:
            self._fail(state, problems[0])
            return
        state.platform_digests.update({p: d for p, d in info.platforms.items() if p in svc.platforms})
        state.pushed = True
        if state.status != "up-to-date":
            state.status = "passed"

    def _summary(self, state: ServiceState) -> ServiceSummary:
        svc = state.plan
        return ServiceSummary(
            service=svc.name,
            image=svc.image,
            tags=(svc.hash_tag, *svc.tags),
            status=state.status,
            digest=state.digest,
            platform_digests=dict(sorted(state.platform_digests.items())),
            input_hash=svc.input_hash,
            builder=svc.builder.image if svc.builder else None,
            builder_digest=svc.builder.digest if svc.builder else None,
            runtime_digest=svc.runtime.digest,
            exception=svc.builder.exception if svc.builder else None,
            pushed=state.pushed,
            reason=state.reason,
        )


def verify_target(svc: ServicePlan, spec: Service, ref: str) -> VerifyTarget:
    """What a service's image must be: its binaries, toolchain, start-up and the pinned runtime."""
    runtime = None
    if svc.runtime.digest and svc.runtime.pull:
        runtime = RuntimePin(svc.runtime.image, svc.runtime.pull, svc.runtime.digest)
    return VerifyTarget(
        image=ref,
        platforms=svc.platforms,
        binaries=svc.binaries,
        toolchain=spec.toolchain.name if spec.toolchain else None,
        requirement=spec.toolchain.version if spec.toolchain else None,
        allow_cgo=spec.allow_cgo,
        startup=spec.startup,
        runtime=runtime,
    )


def _tail(lines: Sequence[str], n: int = 20) -> str:
    return "\n".join(lines[-n:])


_VERTEX = re.compile(r"^#(\d+) ")


def split_log_by_platform(lines: Sequence[str], platforms: Sequence[str]) -> dict[str, str]:
    """buildx plain logs interleave platforms; a vertex `#N [linux/arm64 …]` owns its `#N …` lines.
    Vertices that name no platform (context transfer, exporting) go to every platform's log."""
    owner: dict[str, str] = {}
    out: dict[str, list[str]] = {p: [] for p in platforms}
    for line in lines:
        match = _VERTEX.match(line)
        target = None
        if match:
            vertex = match.group(1)
            if vertex not in owner:
                owner[vertex] = next((p for p in platforms if f"[{p} " in line or f"[{p}]" in line), "")
            target = owner[vertex] or None
        for platform in platforms:
            if target is None or target == platform:
                out[platform].append(line)
    return {p: "\n".join(v) + "\n" for p, v in out.items()}
