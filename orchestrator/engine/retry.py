"""Wrappers around the engine and the registry client: bounded retries of transient errors, and call
counting. They wrap the interfaces rather than living inside the adapters (ko's build wrappers)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from orchestrator.engine import BuildOutcome, BuildRequest, Engine, EngineInfo, RunOutcome, StartupSpec
from orchestrator.engine.registry import IndexInfo, RegistryClient
from orchestrator.errors import ImageNotFound, TransientEngineError
from orchestrator.policy.refs import parse

log = structlog.get_logger("orch.retry")
T = TypeVar("T")

ATTEMPTS = int(os.environ.get("ORCH_RETRY_ATTEMPTS", "6"))
WAIT_INITIAL = float(os.environ.get("ORCH_RETRY_WAIT", "0.2"))
WAIT_MAX = 8.0


def _before_sleep(what: str) -> Callable[[RetryCallState], None]:
    def hook(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retry",
            call=what,
            attempt=state.attempt_number,
            of=ATTEMPTS,
            wait_s=round(state.upcoming_sleep, 2),
            error=str(exc).splitlines()[0] if exc else None,
        )

    return hook


def retrying(what: str, fn: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Call `fn`, retrying TransientEngineError only: bounded, exponential with jitter, logged."""
    for attempt in Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=WAIT_INITIAL, max=WAIT_MAX),
        retry=retry_if_exception_type(TransientEngineError),
        before_sleep=_before_sleep(what),
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


class RetryingRegistry:
    def __init__(self, inner: RegistryClient) -> None:
        self.inner = inner

    def resolve(self, ref: str) -> IndexInfo:
        return retrying(f"resolve {ref}", lambda: self.inner.resolve(ref))

    def manifest_json(self, ref: str, reference: str) -> dict[str, Any]:
        image = parse(ref)
        return retrying(f"read {image.name}@{reference[:19]}", lambda: self.inner.manifest_json(image, reference))

    def blob_json(self, ref: str, digest: str) -> dict[str, Any]:
        image = parse(ref)
        return retrying(f"read {image.name} blob {digest[:19]}", lambda: self.inner.blob_json(image, digest))

    def diff_ids(self, ref: str, platform: str) -> tuple[str, ...]:
        """The uncompressed layer digests of one platform's image; each request retried on its own."""
        info = self.resolve(ref)
        manifest_digest = info.platforms.get(platform)
        if manifest_digest is None:
            raise ImageNotFound(f"{ref} has no {platform} image (it has {', '.join(info.platforms)})")
        manifest = self.manifest_json(ref, manifest_digest)
        config = self.blob_json(ref, manifest["config"]["digest"])
        return tuple(config.get("rootfs", {}).get("diff_ids", []))

    def exists(self, ref: str) -> str | None:
        return retrying(f"look up {ref}", lambda: self.inner.exists(ref))

    def ping(self, registry: str) -> None:
        retrying(f"ping {registry}", lambda: self.inner.ping(registry))


class RetryingEngine:
    """Retries the calls that talk to registries (pulls, pushes, probes that pull). A build never
    retries: a failing Dockerfile step raises BuildFailed, which is not transient."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner

    def info(self) -> EngineInfo:
        return self.inner.info()

    def probe(self, image: str, platform: str, command: Sequence[str]) -> str:
        return retrying(f"probe {image}", lambda: self.inner.probe(image, platform, command))

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> BuildOutcome:
        return self.inner.build(request, on_line)

    def local_digest(self, ref: str) -> str | None:
        return self.inner.local_digest(ref)

    def extract(self, image: str, platform: str, paths: Sequence[str]) -> dict[str, bytes | None]:
        return self.inner.extract(image, platform, paths)

    def save(self, image: str, dest: Path) -> None:
        self.inner.save(image, dest)

    def run(self, image: str, platform: str, spec: StartupSpec) -> RunOutcome:
        return self.inner.run(image, platform, spec)

    def tag(self, source: str, target: str) -> None:
        self.inner.tag(source, target)

    def push(self, ref: str) -> None:
        retrying(f"push {ref}", lambda: self.inner.push(ref))

    def pull(self, ref: str, platform: str) -> None:
        retrying(f"pull {ref}", lambda: self.inner.pull(ref, platform))


class CountingEngine:
    """Counts calls by method name (tests and benchmarks: 'zero buildx builds started')."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return target(*args, **kwargs)

        return counted
