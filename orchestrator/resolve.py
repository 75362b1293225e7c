"""Resolution: every external image the build needs → its index digest, platforms and (for builder
candidates) the toolchain version probed from the image itself, cached by digest in the lock."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import structlog

from orchestrator.engine import Engine, native_platform
from orchestrator.engine.retry import RetryingRegistry
from orchestrator.errors import EngineError, EngineUnavailable, ImageNotFound
from orchestrator.lock import LockFile, Need
from orchestrator.models import ResolvedImage
from orchestrator.policy.refs import normalise

log = structlog.get_logger("orch.resolve")
_GO_VERSION = re.compile(r"\bgo(\d+\.\d+(?:\.\d+)?(?:(?:rc|beta)\d+)?)\b")


def parse_toolchain_version(toolchain: str, output: str) -> str | None:
    if toolchain == "go":
        match = _GO_VERSION.search(output)
        return match.group(1) if match else None
    match = re.search(r"\b(\d+\.\d+(?:\.\d+)?)\b", output)
    return match.group(1) if match else None


def resolve_needs(
    needs: Iterable[Need],
    *,
    registry: RetryingRegistry,
    engine: Engine | None,
    previous: LockFile | None,
    refresh: bool = False,
) -> dict[str, ResolvedImage]:
    """Resolve each need; a locked entry is kept while its pinned index is still in the registry, and
    a probe is reused when the digest did not move (cache by digest)."""
    cached = previous.by_name() if previous else {}
    by_digest = {img.digest: img for img in cached.values() if img.toolchain_version}
    out: dict[str, ResolvedImage] = {}
    for need in needs:
        key = normalise(need.name)
        old = cached.get(key)
        if (
            old
            and not refresh
            and old.pull == need.pull
            and need.platforms <= set(old.platforms)
            and (not need.toolchain or old.toolchain_version)
        ):
            if registry.exists(old.pinned_pull) == old.digest:
                out[key] = old
                continue
            # the pinned index is gone (registry garbage-collected, or a lock from another machine)
            log.warning("lock.missing", image=need.name, digest=old.digest, pull=old.pull)
        try:
            info = registry.resolve(need.pull)
        except ImageNotFound as exc:
            raise ImageNotFound(
                f"{need.name} (pulled from {need.pull}) cannot be resolved: {exc.message}",
                hint="check the policy's mirrors, or seed the local registry with `scripts/engine.sh up`",
            ) from None
        version = error = None
        if need.toolchain:
            hit = by_digest.get(info.digest)
            if hit is not None:
                version = hit.toolchain_version
            elif engine is None:
                error = "not probed (no engine)"
            else:
                version, error = _probe(engine, need, info.digest, info.platforms)
        entry = ResolvedImage(
            name=need.name,
            pull=need.pull,
            digest=info.digest,
            platforms=info.platforms,
            toolchain=need.toolchain,
            toolchain_version=version,
            probe_error=error,
        )
        if old and old.digest != entry.digest:
            log.info("lock.moved", image=need.name, old=old.digest, new=entry.digest)
        out[key] = entry
    return out


def _probe(engine: Engine, need: Need, digest: str, platforms: Mapping[str, str]) -> tuple[str | None, str | None]:
    native = native_platform()
    platform = native if native in platforms else next(iter(platforms), native)
    command = need.version_command or ("--version",)
    pinned = f"{need.pull.split('@')[0]}@{digest}"
    try:
        output = engine.probe(pinned, platform, command)
    except EngineUnavailable:
        raise  # no engine is not a fact about the image: exit 5, not a rejected candidate
    except EngineError as exc:
        return None, f"`{' '.join(command)}` failed in {need.name}: {exc.message}"
    version = parse_toolchain_version(need.toolchain or "", output)
    if version is None:
        return None, f"`{' '.join(command)}` printed no {need.toolchain} version: {output.strip()[:120]!r}"
    log.info("probe", image=need.name, digest=digest, platform=platform, version=version)
    return version, None
