"""orch.lock: every external base image a build uses, pinned to its multi-platform index digest.

Pure: reading, writing (stable, diff-friendly JSON) and staleness. Resolution itself goes through the
engine gateway. The lock holds external images only; in-graph dependencies are built, not locked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import ConfigError
from orchestrator.models import Frozen, ResolvedImage
from orchestrator.policy.refs import normalise

LOCK_NAME = "orch.lock"


class LockFile(Frozen):
    version: int = 1
    images: tuple[ResolvedImage, ...] = ()

    def by_name(self) -> dict[str, ResolvedImage]:
        return {normalise(image.name): image for image in self.images}


@dataclass(frozen=True)
class Need:
    """An external image the project's build needs: its policy name, where it is pulled from, for
    which platforms, and (for builder candidates) which toolchain to probe."""

    name: str
    pull: str
    platforms: frozenset[str]
    toolchain: str | None = None
    version_command: tuple[str, ...] | None = None


def read_lock(path: Path) -> LockFile | None:
    if not path.exists():
        return None
    try:
        return LockFile.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ConfigError(
            f"lock file is malformed: {exc.errors()[0]['msg']}",
            file=str(path),
            hint="regenerate it with `orch lock --update`",
        ) from None


def dump_lock(lock: LockFile) -> str:
    images = sorted(lock.images, key=lambda i: normalise(i.name))
    data = {
        "version": lock.version,
        "images": [
            image.model_dump(mode="json", exclude_none=True) | {"platforms": dict(sorted(image.platforms.items()))}
            for image in images
        ],
    }
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_lock(path: Path, lock: LockFile) -> None:
    tmp = path.with_suffix(".lock.tmp")
    tmp.write_text(dump_lock(lock), encoding="utf-8")
    tmp.replace(path)


def staleness(lock: LockFile | None, needs: Iterable[Need]) -> list[str]:
    """What differs between what the project needs and what the lock holds (empty: up to date)."""
    if lock is None:
        return ["orch.lock does not exist"]
    held = lock.by_name()
    wanted = {normalise(n.name): n for n in needs}
    problems: list[str] = []
    for key, need in sorted(wanted.items()):
        entry = held.get(key)
        if entry is None:
            problems.append(f"{need.name}: not in the lock")
            continue
        if entry.pull != need.pull:
            problems.append(f"{need.name}: pulled from {need.pull} now, locked from {entry.pull}")
        missing = sorted(need.platforms - set(entry.platforms))
        if missing:
            problems.append(f"{need.name}: locked index lacks {', '.join(missing)}")
        if need.toolchain and entry.toolchain_version is None and entry.probe_error is None:
            problems.append(f"{need.name}: toolchain version was never probed")
    problems.extend(
        f"{entry.name}: locked but no longer used" for key, entry in sorted(held.items()) if key not in wanted
    )
    return problems


def merge(lock: LockFile | None, resolved: Mapping[str, ResolvedImage], keep: Iterable[str]) -> LockFile:
    """A new lock: freshly resolved entries win; other entries are kept only if still needed."""
    keep_keys = {normalise(k) for k in keep}
    entries = {k: v for k, v in (lock.by_name() if lock else {}).items() if k in keep_keys}
    entries.update({normalise(k): v for k, v in resolved.items()})
    return LockFile(images=tuple(entries.values()))
