"""The runner's scheduling, with a fake engine (pure logic; the real engine is exercised in
tests/integration/test_build.py): waves in order, dependents of a failure skipped, no new build after a
failure without --keep-going, independent services going on with it, nothing pushed unverified."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from project_files import services, write_project

from orchestrator.engine import BuildOutcome, BuildRequest, EngineInfo, RunOutcome, StartupSpec
from orchestrator.engine.registry import INDEX_TYPES, IndexInfo
from orchestrator.errors import BuildFailed
from orchestrator.models import ResolvedImage
from orchestrator.prepare import begin, choose, finish
from orchestrator.runner import Runner, RunOptions
from orchestrator.verify.checks import CheckResult
from orchestrator.verify.image import PlatformVerdict, VerifyTarget

PLATFORMS = {"linux/amd64": "sha256:" + "a" * 64, "linux/arm64": "sha256:" + "b" * 64}


class FakeEngine:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.built: list[str] = []
        self.pushed: list[str] = []

    def info(self) -> EngineInfo:
        raise AssertionError("not used")

    def probe(self, image: str, platform: str, command: Sequence[str]) -> str:
        raise AssertionError("not used")

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> BuildOutcome:
        self.built.append(request.service)
        on_line(f"#1 [linux/amd64 1/1] building {request.service}")
        if request.service in self.failing:
            raise BuildFailed(f"build of {request.service} failed: exit code 1", stderr="boom")
        digest = "sha256:" + hashlib.sha256(request.service.encode()).hexdigest()
        return BuildOutcome(digest=digest, log="")

    def local_digest(self, ref: str) -> str | None:
        return None

    def extract(self, image: str, platform: str, paths: Sequence[str]) -> dict[str, bytes | None]:
        raise AssertionError("not used")

    def save(self, image: str, dest: Path) -> None:
        raise AssertionError("not used")

    def run(self, image: str, platform: str, spec: StartupSpec) -> RunOutcome:
        raise AssertionError("not used")

    def tag(self, source: str, target: str) -> None:
        raise AssertionError("not used")

    def push(self, ref: str) -> None:
        self.pushed.append(ref)

    def pull(self, ref: str, platform: str) -> None:
        raise AssertionError("not used")


class FakeVerifier:
    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing

    def verify(self, target: VerifyTarget) -> tuple[CheckResult, list[PlatformVerdict]]:
        ok = not any(f"/{name}:" in target.image for name in self.failing)
        check = CheckResult("arch", ok, "fine" if ok else "injected failure")
        return CheckResult("index", True, "ok"), [PlatformVerdict(p, (check,), 0.0) for p in target.platforms]


class FakeRegistry:
    def exists(self, ref: str) -> str | None:
        return None

    def resolve(self, ref: str) -> IndexInfo:  # the read-back after a push: what FakeEngine built
        service = ref.rsplit("/", 1)[-1].split(":", maxsplit=1)[0]
        digest = "sha256:" + hashlib.sha256(service.encode()).hexdigest()
        return IndexInfo(digest, INDEX_TYPES[0], dict(PLATFORMS))


# a -> b -> d, a -> c; e independent
GRAPH = """\
services:
  a: {dockerfile: Dockerfile}
  b: {dockerfile: Dockerfile, depends_on: [a]}
  c: {dockerfile: Dockerfile, depends_on: [a]}
  d: {dockerfile: Dockerfile, depends_on: [b]}
  e: {dockerfile: Dockerfile}
"""


def run(
    tmp_path: Path,
    *,
    failing: set[str],
    keep_going: bool,
    jobs: int = 1,
    verify_failing: set[str] = frozenset(),
    push: bool = False,
) -> tuple[Runner, FakeEngine]:  # type: ignore[assignment]
    path = write_project(tmp_path, services(GRAPH))
    prep = begin(path)
    runtime = ResolvedImage(
        name="gcr.io/distroless/static-debian12:nonroot",
        pull="gcr.io/distroless/static-debian12:nonroot",
        digest="sha256:" + "c" * 64,
        platforms=PLATFORMS,
    )
    prep.facts = {"gcr.io/distroless/static-debian12:nonroot": runtime}
    prep.today = dt.date(2026, 12, 4)
    choose(prep)
    plan = finish(prep)
    engine = FakeEngine(failing)
    runner = Runner(
        prep.project,
        plan,
        engine=engine,
        registry=FakeRegistry(),  # type: ignore[arg-type]
        verifier=FakeVerifier(verify_failing),
        options=RunOptions(jobs=jobs, keep_going=keep_going, push=push),
    )
    runner.run()
    return runner, engine


def status(runner: Runner) -> dict[str, str]:
    return {name: state.status for name, state in runner.states.items()}


def test_everything_builds_in_wave_order(tmp_path: Path) -> None:
    runner, engine = run(tmp_path, failing=set(), keep_going=False)
    assert set(status(runner).values()) == {"passed"}
    order = engine.built
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("a") < order.index("c")


def test_keep_going_skips_dependents_and_builds_the_rest(tmp_path: Path) -> None:
    runner, engine = run(tmp_path, failing={"b"}, keep_going=True)
    assert status(runner) == {"a": "passed", "b": "failed", "c": "passed", "d": "skipped", "e": "passed"}
    assert "d" not in engine.built
    assert runner.states["d"].reason == "dependency failed: b"
    rows = [r for r in runner.results if r.service == "d"]
    assert {r.status for r in rows} == {"skipped"}
    assert {r.platform for r in rows} == {"linux/amd64", "linux/arm64"}


def test_without_keep_going_no_new_build_starts_after_a_failure(tmp_path: Path) -> None:
    runner, engine = run(tmp_path, failing={"a"}, keep_going=False)
    assert engine.built == ["a"]  # jobs=1: nothing was in flight, nothing else started
    assert status(runner)["a"] == "failed"
    assert {status(runner)[n] for n in "bcde"} == {"skipped"}
    assert "earlier service failed" in runner.states["e"].reason


def test_a_failed_verification_is_never_pushed_and_skips_dependents(tmp_path: Path) -> None:
    runner, engine = run(tmp_path, failing=set(), keep_going=True, verify_failing={"a"}, push=True)
    assert status(runner)["a"] == "failed"
    assert status(runner)["b"] == "skipped"
    assert not any("/a:" in ref for ref in engine.pushed)
    assert status(runner)["c"] == "skipped"
    assert status(runner)["e"] == "passed"
    assert runner.states["e"].pushed
    assert any("/e:" in ref for ref in engine.pushed)


@pytest.mark.parametrize("jobs", [1, 2])
def test_build_failure_rows_carry_the_log_tail(tmp_path: Path, jobs: int) -> None:
    runner, _ = run(tmp_path, failing={"e"}, keep_going=True, jobs=jobs)
    failed = [r for r in runner.results if r.service == "e" and r.step == "build"]
    assert failed
    assert all(r.status == "failed" and "exit code 1" in r.message for r in failed)
