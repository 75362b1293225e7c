"""Verification against real images: one project with several services, built once by the real
engine (`orch build --keep-going --report`), then each test reads the rows of report.json.

The services reproduce what Exception #001 was really about (see the root-cause note): an "arm64"
image holding an x86-64 binary (`GOARCH=${GOARCH:-amd64}` on $BUILDPLATFORM), a Go 1.25.3 amd64
binary that matches golang/go#69255, a binary that crashes only on arm64 (seen only by starting it,
emulated), a dynamically linked binary, and an image whose final stage is not the pinned runtime."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTRY, go_dockerfile, go_main, orch, write_project

from orchestrator.engine.docker import DockerEngine
from orchestrator.engine.registry import RegistryClient
from orchestrator.engine.retry import RetryingEngine, RetryingRegistry
from orchestrator.verify.image import RuntimePin, Verifier, VerifyTarget

AMD64, ARM64 = "linux/amd64", "linux/arm64"
ALL_CHECKS = {"arch", "static", "go-buildinfo", "runtime-base", "startup"}

SERVICES = """\
version: 1
project: verify
registry: REGISTRY
services:
  good:
    dockerfile: dockerfiles/good.Dockerfile
    context: src
    toolchain: {name: go, version: ">=1.24"}
    binaries: [/usr/local/bin/good]
    startup: {command: [serve], expect: running, grace: 2, http: {port: 8080}}
  seedbug:
    dockerfile: dockerfiles/seedbug.Dockerfile
    context: src
    toolchain: {name: go, version: ">=1.24"}
    binaries: [/usr/local/bin/seedbug]
    startup: {command: [--version], expect: exit-0}
  dynamic:
    dockerfile: dockerfiles/dynamic.Dockerfile
    context: dyn
    platforms: [linux/amd64]
    binaries: [/usr/local/bin/dynamic]
  oldgo:
    dockerfile: dockerfiles/oldgo.Dockerfile
    context: src
    toolchain: {name: go, version: ">=1.24"}
    binaries: [/usr/local/bin/oldgo]
  armcrash:
    dockerfile: dockerfiles/armcrash.Dockerfile
    context: src
    toolchain: {name: go, version: ">=1.24"}
    binaries: [/usr/local/bin/armcrash]
    startup: {expect: running, grace: 2}
"""

# The seed's Dockerfile: the builder runs on the build platform and compiles for ${GOARCH:-amd64},
# so every platform's image gets an amd64 binary.
SEEDBUG_DOCKERFILE = """\
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
ARG GOARCH
WORKDIR /src
COPY go.mod ./
COPY cmd/seedbug/ cmd/seedbug/
RUN --mount=type=cache,id=orch-go-build,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=linux GOARCH=${GOARCH:-amd64} \\
    go build -trimpath -o /out/seedbug ./cmd/seedbug
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/seedbug /usr/local/bin/seedbug
USER 1001
ENTRYPOINT ["/usr/local/bin/seedbug"]
"""

DYNAMIC_DOCKERFILE = """\
ARG RUNTIME_IMAGE
FROM ${RUNTIME_IMAGE}
COPY dynamic /usr/local/bin/dynamic
USER 1001
ENTRYPOINT ["/usr/local/bin/dynamic"]
"""

DYNAMIC_C = '#include <stdio.h>\nint main(void) { puts("dynamic v1"); return 0; }\n'

TINY_MAIN = """\
package main

import "fmt"

func main() { fmt.Println("NAME v1") }
"""

ARMCRASH_MAIN = """\
package main

import (
	"fmt"
	"runtime"
	"time"
)

func main() {
	if runtime.GOARCH == "arm64" {
		panic("arm64 init failed")
	}
	fmt.Println("armcrash up")
	for {
		time.Sleep(time.Hour)
	}
}
"""

# A final stage that is not the pinned runtime: FROM scratch, with the good service's binaries.
SCRATCH_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY good-${TARGETARCH} /usr/local/bin/good
ENTRYPOINT ["/usr/local/bin/good"]
"""


@dataclass
class Built:
    root: Path
    prefix: str  # 127.0.0.1:5000/<run_id>-verify
    done: subprocess.CompletedProcess[str]
    report: dict[str, Any]

    def rows(self, service: str, platform: str | None = None, check: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.report["results"]
            if r["service"] == service
            and r["step"] == "verify"
            and (platform is None or r["platform"] == platform)
            and (check is None or r["check"] == check)
        ]

    def row(self, service: str, platform: str, check: str) -> dict[str, Any]:
        found = self.rows(service, platform, check)
        assert len(found) >= 1, f"no {check} row for {service} {platform}: {self.rows(service)}"
        return found[0]

    def image(self, service: str) -> str:
        summary = next(s for s in self.report["services"] if s["service"] == service)
        return f"{summary['image']}:{summary['tags'][0]}"

    def lock(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "orch.lock").read_text())
        return data


def _pinned(entry: dict[str, Any]) -> str:
    """The pinned pull reference of an orch.lock entry: mirror@index-digest."""
    return f"{entry['pull'].split('@')[0]}@{entry['digest']}"


def _docker(*args: str, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(["docker", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Built:
    root = tmp_path_factory.mktemp("verify")
    prefix = f"{REGISTRY}/{run_id}-verify"
    write_project(
        root,
        SERVICES.replace("REGISTRY", prefix),
        programs={
            "good": go_main("good"),
            "seedbug": TINY_MAIN.replace("NAME", "seedbug"),
            "oldgo": TINY_MAIN.replace("NAME", "oldgo"),
            "armcrash": ARMCRASH_MAIN,
        },
        dockerfiles={
            "good": go_dockerfile("good"),
            "seedbug": SEEDBUG_DOCKERFILE,
            "dynamic": DYNAMIC_DOCKERFILE,
            "oldgo": go_dockerfile("oldgo"),
            "armcrash": go_dockerfile("armcrash"),
        },
    )
    dyn = root / "dyn"
    dyn.mkdir()
    (dyn / "dynamic.c").write_text(DYNAMIC_C)
    subprocess.run(["gcc", "-O2", "-o", str(dyn / "dynamic"), str(dyn / "dynamic.c")], check=True)
    done = orch("build", "--keep-going", "--report", str(root / "out"), cwd=root)
    report_file = root / "out" / "report.json"
    assert report_file.exists(), done.stdout + done.stderr
    return Built(root, prefix, done, json.loads(report_file.read_text()))


def test_build_exits_7_because_verification_failed(built: Built) -> None:
    assert built.done.returncode == 7, built.done.stdout + built.done.stderr
    assert built.report["exit_code"] == 7
    status = {s["service"]: s["status"] for s in built.report["services"]}
    assert status["good"] == "passed", status
    assert status["oldgo"] == "passed", status
    assert {status["seedbug"], status["dynamic"], status["armcrash"]} == {"failed"}, status


def test_good_passes_every_check_on_both_platforms(built: Built) -> None:
    for platform in (AMD64, ARM64):
        rows = built.rows("good", platform)
        assert {r["check"] for r in rows} == ALL_CHECKS, rows
        assert all(r["status"] == "passed" for r in rows), rows
    assert "x86-64" in built.row("good", AMD64, "arch")["message"]
    assert "AArch64" in built.row("good", ARM64, "arch")["message"]
    assert "GOARCH=arm64" in built.row("good", ARM64, "go-buildinfo")["message"]
    assert built.row("good", ARM64, "startup")["emulated"] is True
    assert built.row("good", AMD64, "startup")["emulated"] is False
    assert "/healthz" in built.row("good", ARM64, "startup")["message"]
    index = [r for r in built.rows("good") if r["check"] == "index"]
    assert index, built.rows("good")
    assert all(r["status"] == "passed" for r in index), index


def test_seedbug_arm64_image_holds_an_x86_64_binary(built: Built) -> None:
    arch = built.row("seedbug", ARM64, "arch")
    assert arch["status"] == "failed"
    assert "linux/arm64 image holds an x86-64 binary at /usr/local/bin/seedbug" in arch["message"]
    buildinfo = built.rows("seedbug", ARM64, "go-buildinfo")
    assert any(
        r["status"] == "failed" and "GOARCH=amd64 but the platform is linux/arm64" in r["message"] for r in buildinfo
    ), buildinfo
    # The incident itself: the "arm64" image carries a go1.25.3 amd64 binary, so the advisory shows.
    assert any("golang/go#69255" in r["message"] for r in buildinfo), buildinfo
    # The arm64 startup runs the x86-64 binary. On an amd64 host the kernel runs it natively and it
    # exits 0 (so starting it proves nothing); orch still labels the platform emulated. Only the
    # file checks above catch the wrong architecture, which is the point.
    startup = built.row("seedbug", ARM64, "startup")
    assert startup["emulated"] is True
    for row in built.rows("seedbug", AMD64):
        assert row["status"] == "passed", row


def test_dynamic_binary_fails_static_and_names_interpreter_and_libc(built: Built) -> None:
    assert {r["platform"] for r in built.rows("dynamic")} - {"all"} <= {AMD64}
    static = built.row("dynamic", AMD64, "static")
    assert static["status"] == "failed"
    assert "/lib64/ld-linux-x86-64.so.2" in static["message"]
    assert "libc.so.6" in static["message"]
    assert built.row("dynamic", AMD64, "arch")["status"] == "passed"
    assert built.row("dynamic", AMD64, "runtime-base")["status"] == "passed"
    # not a Go binary, and the service asks for no Go toolchain
    assert not built.rows("dynamic", AMD64, "go-buildinfo")


def test_oldgo_amd64_carries_the_69255_advisory_as_a_warning(built: Built) -> None:
    amd = built.rows("oldgo", AMD64, "go-buildinfo")
    assert any("go1.25.3" in r["message"] for r in amd), amd
    warnings = [r for r in amd if "golang/go#69255" in r["message"]]
    assert warnings, amd
    for row in warnings:
        assert row["status"] == "passed"
        assert row["message"].startswith("warning:")
    arm = built.rows("oldgo", ARM64)
    assert arm
    assert all("69255" not in r["message"] for r in arm), arm
    assert all(r["status"] == "passed" for r in built.rows("oldgo")), built.rows("oldgo")


def test_armcrash_fails_startup_only_on_emulated_arm64(built: Built) -> None:
    arm = built.row("armcrash", ARM64, "startup")
    assert arm["status"] == "failed"
    assert "panic:" in arm["message"], arm
    assert "arm64 init failed" in (arm["message"] + (arm["evidence"] or ""))
    assert arm["emulated"] is True
    amd = built.row("armcrash", AMD64, "startup")
    assert amd["status"] == "passed", amd
    assert amd["emulated"] is False
    # Everything read from the files passes: only starting the image shows the crash.
    for check in ("arch", "static", "go-buildinfo", "runtime-base"):
        assert all(r["status"] == "passed" for r in built.rows("armcrash", ARM64, check)), check


def test_wrongbase_final_stage_not_the_pinned_runtime(built: Built, tmp_path: Path) -> None:
    good = built.image("good")
    for arch in ("amd64", "arm64"):
        cid = _docker("create", "--platform", f"linux/{arch}", good).strip()
        try:
            _docker("cp", f"{cid}:/usr/local/bin/good", str(tmp_path / f"good-{arch}"))
        finally:
            _docker("rm", cid)
    (tmp_path / "Dockerfile").write_text(SCRATCH_DOCKERFILE)
    ref = f"{built.prefix}/wrongbase:x"
    _docker(
        "buildx",
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=false",
        "--load",
        "-t",
        ref,
        str(tmp_path),
    )

    runtime = next(i for i in built.lock()["images"] if i["name"].endswith("ubi-minimal:9.6"))
    pin = RuntimePin(runtime["name"], _pinned(runtime), runtime["digest"])
    verifier = Verifier(RetryingEngine(DockerEngine()), RetryingRegistry(RegistryClient()), ())
    index, verdicts = verifier.verify(
        VerifyTarget(
            image=ref, platforms=(AMD64, ARM64), binaries=("/usr/local/bin/good",), toolchain="go", runtime=pin
        )
    )
    assert index.passed, index
    assert [v.platform for v in verdicts] == [AMD64, ARM64]
    for verdict in verdicts:
        by_check = {c.check: c for c in verdict.checks}
        assert by_check["arch"].passed, verdict.checks
        assert by_check["static"].passed, verdict.checks
        base = by_check["runtime-base"]
        assert not base.passed, base
        assert "do not begin with the pinned" in base.message
        assert not verdict.passed


def test_standalone_verify_of_images_orch_did_not_build(built: Built, tmp_path: Path) -> None:
    lock = {i["name"]: i for i in built.lock()["images"]}
    builder = lock["registry.access.redhat.com/ubi9/go-toolset:1.25"]
    runtime = lock["registry.access.redhat.com/ubi9/ubi-minimal:9.6"]
    args = ["--build-arg", f"BUILDER_IMAGE={_pinned(builder)}", "--build-arg", f"RUNTIME_IMAGE={_pinned(runtime)}"]
    bad, good = f"{built.prefix}/standalone:1", f"{built.prefix}/standalone:good"
    for ref, dockerfile in ((bad, "seedbug"), (good, "good")):
        _docker(
            "buildx",
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--provenance=false",
            "--sbom=false",
            "--push",
            *args,
            "-f",
            str(built.root / "dockerfiles" / f"{dockerfile}.Dockerfile"),
            "-t",
            ref,
            str(built.root / "src"),
        )
    elsewhere = tmp_path / "elsewhere"  # no services.yaml here: standalone needs none
    elsewhere.mkdir()

    done = orch(
        "verify",
        bad,
        "--binary",
        "/usr/local/bin/seedbug",
        "--platform",
        "linux/arm64",
        "--report",
        str(tmp_path / "bad"),
        cwd=elsewhere,
    )
    assert done.returncode == 7, done.stdout + done.stderr
    assert "x86-64" in done.stdout + done.stderr
    rows = json.loads((tmp_path / "bad" / "report.json").read_text())["results"]
    arch = next(r for r in rows if r["check"] == "arch" and r["platform"] == ARM64)
    assert arch["status"] == "failed"
    assert "linux/arm64 image holds an x86-64 binary at /usr/local/bin/seedbug" in arch["message"]

    done = orch(
        "verify",
        good,
        "--binary",
        "/usr/local/bin/good",
        "--startup-cmd",
        "--version",
        "--expect",
        "exit-0",
        "--report",
        str(tmp_path / "good"),
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "good" / "report.json").read_text())["results"]
    assert all(r["status"] == "passed" for r in rows), rows
    startup = {r["platform"]: r for r in rows if r["check"] == "startup"}
    assert set(startup) == {AMD64, ARM64}

    assert startup[ARM64]["emulated"] is True
    assert startup[AMD64]["emulated"] is False
    # Go build info is read from any Go binary, even when no --go requirement is given.
    assert {r["check"] for r in rows if r["platform"] == ARM64} == {"arch", "static", "go-buildinfo", "startup"}

    # the runtime base of an image orch did not build: its layers must begin with the given runtime's
    mirror_runtime = runtime["pull"]
    based = orch(
        "verify",
        good,
        "--binary",
        "/usr/local/bin/good",
        "--runtime",
        mirror_runtime,
        "--report",
        str(tmp_path / "based"),
        cwd=elsewhere,
    )
    assert based.returncode == 0, based.stdout + based.stderr
    rows = json.loads((tmp_path / "based" / "report.json").read_text())["results"]
    assert {r["platform"] for r in rows if r["check"] == "runtime-base" and r["status"] == "passed"} == {AMD64, ARM64}
    other = orch(
        "verify",
        good,
        "--binary",
        "/usr/local/bin/good",
        "--runtime",
        builder["pull"],
        "--report",
        str(tmp_path / "other"),
        cwd=elsewhere,
    )
    assert other.returncode == 7, other.stdout + other.stderr
    rows = json.loads((tmp_path / "other" / "report.json").read_text())["results"]
    assert {r["status"] for r in rows if r["check"] == "runtime-base"} == {"failed"}
