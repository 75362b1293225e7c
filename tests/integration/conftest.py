"""Integration tests: the real Docker engine, buildx, QEMU and the local registry on 127.0.0.1:5000.

Skipped when no engine answers locally; failing when CI is set (the CI script brings the engine up, so
a missing engine there is a broken setup, not a reason to skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("ORCH_REGISTRY", "127.0.0.1:5000")
MIRROR = f"{REGISTRY}/mirror"
ORCH = [sys.executable, "-m", "orchestrator"]


def _engine_ready() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client"
    try:
        done = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=20)
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if info.returncode != 0 or done.returncode != 0:
        return (info.stderr or done.stderr).strip()
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5).read()
    except OSError as exc:
        return f"registry {REGISTRY}: {exc}"
    return None


@pytest.fixture(scope="session", autouse=True)
def engine_ready() -> None:
    problem = _engine_ready()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the engine, but it is not ready: {problem}", pytrace=False)
    pytest.skip(f"no engine: {problem} (run scripts/engine.sh up)")


@pytest.fixture(scope="session")
def run_id() -> str:
    """A unique registry namespace per test session, so runs never see each other's images."""
    return "t" + uuid.uuid4().hex[:8]


def orch(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "ORCH_LOG_FORMAT": "json",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    return subprocess.run(
        [*ORCH, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )


def make_go_builder(version: str, ref: str) -> None:
    """Push a multi-arch builder image carrying real Go `version` to `ref` (scripts/make-go-builder.sh)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "make-go-builder.sh"), version, ref],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


POLICY = """\
tiers:
  - {name: red-hat-public, registries: [registry.access.redhat.com]}
  - {name: internal-mirror, registries: ["quay.io/jordigilh/*"], requires_exception: true}
prohibited: [docker.io, gcr.io, ghcr.io, "quay.io/*"]
runtime: registry.access.redhat.com/ubi9/ubi-minimal:9.6
builders:
  go:
    - {image: registry.access.redhat.com/ubi9/go-toolset:1.25}
    - {image: quay.io/jordigilh/golang:1.25-bookworm}
advisories:
  - id: golang/go#69255
    toolchain: go
    versions: ">=1.25.0,<1.25.4"
    applies_to: {goarch: amd64, when: emulated}
    summary: linux/amd64 binaries built with go1.25.0-1.25.3 crash under emulation on arm64 hosts
mirrors:
  registry.access.redhat.com: MIRROR/registry.access.redhat.com
  quay.io/jordigilh: MIRROR/quay.io/jordigilh
"""

GO_DOCKERFILE = """\
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod ./
COPY cmd/NAME/ cmd/NAME/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /out/NAME ./cmd/NAME
FROM BASE
COPY --from=builder /out/NAME /usr/local/bin/NAME
USER 1001
ENTRYPOINT ["/usr/local/bin/NAME"]
"""

GO_MAIN = """\
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		_ = http.ListenAndServe(":8080", nil)
		return
	}
	fmt.Println("NAME VERSION")
}
"""


def write_project(
    root: Path,
    services_yaml: str,
    *,
    programs: Mapping[str, str] = {},
    dockerfiles: Mapping[str, str] = {},
    policy: str | None = None,
    exceptions: Mapping[str, str] = {},
) -> Path:
    """A project on disk: services.yaml, policy/, dockerfiles/, and Go programs under src/cmd/<name>."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "go.mod").write_text("module example.com/t\n\ngo 1.24\n")
    for name, source in programs.items():
        (root / "src" / "cmd" / name).mkdir(parents=True, exist_ok=True)
        (root / "src" / "cmd" / name / "main.go").write_text(source)
    (root / "dockerfiles").mkdir(exist_ok=True)
    for name, text in dockerfiles.items():
        (root / "dockerfiles" / f"{name}.Dockerfile").write_text(text)
    (root / "policy" / "exceptions").mkdir(parents=True, exist_ok=True)
    (root / "policy" / "policy.yaml").write_text((policy or POLICY).replace("MIRROR", MIRROR))
    for exc_id, text in exceptions.items():
        (root / "policy" / "exceptions" / f"{exc_id}.yaml").write_text(textwrap.dedent(text))
    (root / "services.yaml").write_text(textwrap.dedent(services_yaml))
    return root


def go_dockerfile(name: str, base: str = "${RUNTIME_IMAGE}") -> str:
    return GO_DOCKERFILE.replace("NAME", name).replace("FROM BASE", f"FROM {base}")


def go_main(name: str, version: str = "v1") -> str:
    return GO_MAIN.replace("NAME", name).replace("VERSION", version)
