"""The one gateway to the engine (python-on-whales) and to registries.

`Engine` is the small interface the runner and the verifier use; `docker.DockerEngine` implements it
over python-on-whales (the only module that imports it); `retry.RetryingEngine` and
`retry.CountingEngine` wrap any Engine. Pure modules (policy, graph, plan, report) never import this.
"""

from __future__ import annotations

import platform as _host
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

_MACHINE_TO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def native_platform() -> str:
    """The platform this host runs natively (the engine is local)."""
    machine = _host.machine().lower()
    return f"linux/{_MACHINE_TO_ARCH.get(machine, machine)}"


@dataclass(frozen=True)
class BuildRequest:
    service: str
    context: Path
    dockerfile: Path
    platforms: tuple[str, ...]
    tags: tuple[str, ...]
    build_args: Mapping[str, str]
    build_contexts: Mapping[str, str]
    labels: Mapping[str, str]
    target: str | None = None
    no_cache: bool = False
    builder: str | None = None
    network: str | None = None


@dataclass(frozen=True)
class BuildOutcome:
    digest: str  # the loaded multi-platform image's index digest
    log: str


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int | None  # None: still running when checked
    output: str
    http_status: int | None = None
    http_error: str | None = None


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    platforms: tuple[str, ...]
    status: str = ""


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    api_version: str
    buildx_version: str
    native_platform: str
    builders: tuple[BuilderInfo, ...]
    containerd_store: bool
    emulators: frozenset[str] = field(default_factory=frozenset)  # arches with a binfmt handler


@dataclass(frozen=True)
class StartupSpec:
    command: Sequence[str]
    expect: str  # "exit-0" | "running"
    grace: float
    http_port: int | None = None
    http_path: str = "/healthz"


class Engine(Protocol):
    def info(self) -> EngineInfo: ...

    def probe(self, image: str, platform: str, command: Sequence[str]) -> str: ...

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> BuildOutcome: ...

    def local_digest(self, ref: str) -> str | None: ...

    def extract(self, image: str, platform: str, paths: Sequence[str]) -> dict[str, bytes | None]: ...

    def save(self, image: str, dest: Path) -> None: ...

    def run(self, image: str, platform: str, spec: StartupSpec) -> RunOutcome: ...

    def tag(self, source: str, target: str) -> None: ...

    def push(self, ref: str) -> None: ...

    def pull(self, ref: str, platform: str) -> None: ...
