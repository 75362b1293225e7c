"""A small orch project on disk for the config, graph and CLI tests: services.yaml from a string, a
minimal policy directory and the Dockerfiles it names."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

DOCKERFILE = (
    "ARG BUILDER_IMAGE\n"
    "ARG RUNTIME_IMAGE\n"
    "FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder\n"
    "WORKDIR /src\n"
    "COPY . .\n"
    "RUN go build -o /out/app .\n"
    "FROM ${RUNTIME_IMAGE}\n"
    "COPY --from=builder /out/app /app\n"
)

POLICY = """\
version: 1
tiers:
  - name: official
    registries: ["docker.io/library/*"]
runtime: gcr.io/distroless/static-debian12:nonroot
builders:
  go:
    - image: golang:1.25
"""

HEADER = "version: 1\nproject: demo\nregistry: 127.0.0.1:5000/demo\n"


def services(body: str, header: str = HEADER) -> str:
    """A services.yaml text: the usual header, then `body` (dedented)."""
    return header + textwrap.dedent(body)


def write_project(
    root: Path,
    services_yaml: str,
    *,
    files: Mapping[str, str] | None = None,
    policy: str | None = POLICY,
    dockerfiles: tuple[str, ...] = ("Dockerfile",),
) -> Path:
    """Write services.yaml, policy/policy.yaml, the Dockerfiles and extra files.

    Returns the path of services.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    for rel in dockerfiles:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(DOCKERFILE)
    if policy is not None:
        (root / "policy").mkdir(exist_ok=True)
        (root / "policy" / "policy.yaml").write_text(policy)
    (root / "main.go").write_text("package main\n")
    for rel, content in (files or {}).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    path = root / "services.yaml"
    path.write_text(services_yaml)
    return path


def chain(edges: Mapping[str, tuple[str, ...]], *, toolchain: bool = False) -> str:
    """services.yaml for `name -> depends_on` (every service uses ./Dockerfile)."""
    lines = ["services:"]
    for name, deps in edges.items():
        lines.append(f"  {name}:")
        lines.append("    dockerfile: Dockerfile")
        if deps:
            lines.append(f"    depends_on: [{', '.join(deps)}]")
        if toolchain:
            lines.append("    toolchain: {name: go, version: '>=1.22'}")
    return HEADER + "\n".join(lines) + "\n"
