"""Builders for policy tests: a project on disk (services.yaml, policy/, Dockerfiles) from strings,
and resolution facts written by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import Policy, Project, load_policy, load_project
from orchestrator.models import ResolvedImage
from orchestrator.plan import ParsedService, parse_services
from orchestrator.policy.refs import normalise
from orchestrator.policy.selection import BuilderChoice, choose_builder

TIER1_124 = "registry.access.redhat.com/ubi9/go-toolset:1.24"
TIER1_125 = "registry.access.redhat.com/ubi9/go-toolset:1.25"
MIRROR = "quay.io/jordigilh/golang:1.25-bookworm"
RUNTIME = "registry.access.redhat.com/ubi9/ubi-minimal:9.5"
PLATFORMS = ("linux/amd64", "linux/arm64")

POLICY = f"""\
version: 1
tiers:
  - name: red-hat
    registries: [registry.access.redhat.com, registry.redhat.io]
  - name: red-hat-partners
    registries: [registry.connect.redhat.com]
  - name: internal-mirror
    registries: ["quay.io/jordigilh/*"]
    requires_exception: true
prohibited: [docker.io, ghcr.io]
runtime: {RUNTIME}
builders:
  go:
    - image: {TIER1_124}
    - image: {TIER1_125}
    - image: {MIRROR}
advisories:
  - id: GO-69255
    toolchain: go
    versions: ">=1.25.0,<1.25.4"
    applies_to: {{goarch: amd64, when: emulated}}
    summary: linux/amd64 binaries crash under emulation on arm64 hosts
"""

# The seed's exception as a record: approved for one service, reverted when tier 1 carries 1.25.5.
EXC_001 = f"""\
# ADR-028 Exception #001
id: EXC-001
status: approved
services: [workflowexecution]
stage: builder
image: {MIRROR}
instead_of: {TIER1_125}
reason: ARM64 runtime crash (really golang/go#69255 under emulation)
requested_by: jgil
approved_by: jgil
approved_on: 2026-01-09
review_by: 2026-02-09
expires: 2026-04-09
revert_when:
  toolchain: go
  version: ">=1.25.5"
  tier: 1
"""

# The seed's Dockerfile (section 5), shortened.
SEED_DOCKERFILE = f"""\
# ADR-028 Exception #001: Use mirrored upstream Go for ARM64 compatibility
FROM {MIRROR} AS builder
WORKDIR /workspace
COPY go.mod go.sum ./
COPY . .
RUN CGO_ENABLED=0 GOOS=${{GOOS:-linux}} GOARCH=${{GOARCH:-amd64}} go build \\
\t-o workflowexecution ./cmd/workflowexecution

FROM registry.access.redhat.com/ubi9/ubi-minimal:latest
COPY --from=builder /workspace/workflowexecution /usr/local/bin/workflowexecution
"""

ORCH_DOCKERFILE = """\
# syntax=docker/dockerfile:1.7
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/app /usr/local/bin/app
"""


def go_service(name: str, *, dockerfile: str | None = None, version: str = ">=1.25.5") -> str:
    return (
        f"  {name}:\n"
        f"    dockerfile: {dockerfile or f'services/{name}/Dockerfile'}\n"
        f"    toolchain: {{name: go, version: '{version}'}}\n"
    )


@dataclass(frozen=True)
class Setup:
    project: Project
    policy: Policy
    parsed: dict[str, ParsedService]


def make_project(
    tmp_path: Path,
    dockerfiles: Mapping[str, str],
    *,
    services: str | None = None,
    exceptions: Mapping[str, str] | None = None,
    policy: str = POLICY,
) -> Setup:
    """Write services.yaml (default: one go service per Dockerfile), the policy and its exception
    records, and the Dockerfiles (keyed by service name, at services/<name>/Dockerfile)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if services is None:
        services = "".join(go_service(name) for name in dockerfiles)
    (tmp_path / "services.yaml").write_text(
        f"version: 1\nproject: demo\nregistry: 127.0.0.1:5000/demo\nservices:\n{services}"
    )
    policy_dir = tmp_path / "policy"
    (policy_dir / "exceptions").mkdir(parents=True)
    (policy_dir / "policy.yaml").write_text(policy)
    for exc_id, text in (exceptions or {}).items():
        (policy_dir / "exceptions" / f"{exc_id}.yaml").write_text(text)
    for name, text in dockerfiles.items():
        path = tmp_path / "services" / name / "Dockerfile"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    project = load_project(tmp_path / "services.yaml")
    return Setup(project, load_policy(project.policy_dir), parse_services(project))


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def fact(
    image: str,
    version: str | None = None,
    *,
    platforms: Iterable[str] = PLATFORMS,
    probe_error: str | None = None,
) -> ResolvedImage:
    return ResolvedImage(
        name=image,
        pull=image.split("@", 1)[0],
        digest=digest_of(f"index {image}"),
        platforms={p: digest_of(f"{image} {p}") for p in platforms},
        toolchain="go" if version or probe_error else None,
        toolchain_version=version,
        probe_error=probe_error,
    )


def facts(*items: ResolvedImage) -> dict[str, ResolvedImage]:
    return {normalise(i.name): i for i in items}


def seed_facts(tier1_125: str = "1.25.3") -> dict[str, ResolvedImage]:
    """As on 2026-01-09: tier 1 carries 1.24.6 and 1.25.3, the mirror 1.25.5."""
    return facts(
        fact(TIER1_124, "1.24.6"),
        fact(TIER1_125, tier1_125),
        fact(MIRROR, "1.25.5"),
        fact(RUNTIME),
    )


def choices_for(setup: Setup, found: Mapping[str, ResolvedImage], today: dt.date) -> dict[str, BuilderChoice | None]:
    return {
        name: choose_builder(
            setup.policy,
            service=name,
            spec=spec,
            platforms=setup.project.platforms_of(name),
            facts=found,
            today=today,
        )
        for name, spec in setup.project.services.items()
    }
