"""ADR-028 Exception #001, replayed with real images in the local registry.

The seed: the tier-1 Red Hat go-toolset carried Go 1.25.3, the service needed a newer Go, and a
tier-3 mirror of upstream Go 1.25.5 was approved by exception for one service, then used by two and
never retired. Here orch refuses to build without the exception, uses it only for the service it
names, reports it expired or past review, drafts the next request from evidence, and tells when the
tier-1 image caught up (the revert condition).

Most tests only resolve and probe (`orch lock`, `orch plan --json`, `orch policy check|audit`);
`orch build` is used only where the policy refuses before anything compiles.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from conftest import (
    POLICY,
    REGISTRY,
    go_dockerfile,
    go_main,
    make_go_builder,
    orch,
    write_project,
)

pytestmark = pytest.mark.engine

RH = "registry.access.redhat.com"
QUAY = "quay.io/jordigilh"
TIER1 = f"{RH}/ubi9/go-toolset:1.25"
TIER3 = f"{QUAY}/golang:1.25-bookworm"
RUNTIME = f"{RH}/ubi9/ubi-minimal:9.6"
SEEDED_RUNTIME = f"{REGISTRY}/mirror/{RUNTIME}"
SERVICES = ("workflowexecution", "notification")

EXC_001 = f"""\
id: EXC-001
status: approved
services: [workflowexecution]
stage: builder
image: {TIER3}
instead_of: {TIER1}
reason: ARM64 runtime crash with go1.25.3 (really golang/go#69255, fixed in go1.25.4)
requested_by: jgil
approved_by: jgil
approved_on: 2026-01-09
review_by: 2026-02-09
expires: 2027-06-30
revert_when: {{toolchain: go, version: ">=1.25.5", tier: 1}}
"""


# --- images and projects -------------------------------------------------------------------------


def _imagetools_copy(dest: str, source: str) -> None:
    done = subprocess.run(
        ["docker", "buildx", "imagetools", "create", "-t", dest, source],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def index_digest(ref: str) -> str:
    done = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", ref],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return str(json.loads(done.stdout)["digest"])


@pytest.fixture(scope="module")
def mirror(run_id: str) -> str:
    """`<registry>/<run_id>-policy`: rh/ubi9/go-toolset:1.25 with Go 1.25.3 (the tier-1 stand-in,
    too old), quay/golang:1.25-bookworm with Go 1.25.5 (the tier-3 mirror) and
    rh/ubi9/ubi-minimal:9.6 (the seeded runtime)."""
    prefix = f"{REGISTRY}/{run_id}-policy"
    make_go_builder("1.25.3", f"{prefix}/rh/ubi9/go-toolset:1.25")
    make_go_builder("1.25.5", f"{prefix}/quay/golang:1.25-bookworm")
    _imagetools_copy(f"{prefix}/rh/ubi9/ubi-minimal:9.6", SEEDED_RUNTIME)
    return prefix


def policy_text(rh_prefix: str, quay_prefix: str) -> str:
    head, _, _ = POLICY.partition("mirrors:\n")
    return f"{head}mirrors:\n  {RH}: {rh_prefix}\n  {QUAY}: {quay_prefix}\n"


def services_yaml(run_id: str, services: Sequence[str]) -> str:
    lines = [
        "version: 1",
        "project: seed",
        f"registry: {REGISTRY}/{run_id}-policy/out",
        "platforms: [linux/amd64, linux/arm64]",
        "services:",
    ]
    for name in services:
        lines += [
            f"  {name}:",
            f"    dockerfile: dockerfiles/{name}.Dockerfile",
            "    context: src",
            '    toolchain: {name: go, version: ">=1.25.4"}',
            "    platforms: [linux/amd64, linux/arm64]",
        ]
    return "\n".join(lines) + "\n"


def seed_project(
    root: Path,
    run_id: str,
    prefix: str,
    *,
    services: Sequence[str] = SERVICES,
    exceptions: Mapping[str, str] = {},
    rh_prefix: str | None = None,
) -> Path:
    return write_project(
        root,
        services_yaml(run_id, services),
        programs={n: go_main(n) for n in services},
        dockerfiles={n: go_dockerfile(n) for n in services},
        policy=policy_text(rh_prefix or f"{prefix}/rh", f"{prefix}/quay"),
        exceptions=exceptions,
    )


def ok(done: subprocess.CompletedProcess[str], code: int = 0) -> str:
    out = done.stdout + done.stderr
    assert done.returncode == code, f"exit {done.returncode}, expected {code}:\n{out}"
    return out


def plan_json(root: Path, env: Mapping[str, str] | None = None) -> dict[str, dict]:
    data = json.loads(orch_stdout(root, "plan", "--json", env=env))
    return {s["name"]: s for s in data["services"]}


def orch_stdout(root: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = orch(*args, cwd=root, env=env)
    ok(done)
    return done.stdout


# --- the refusal without an exception ------------------------------------------------------------


def test_without_exception_build_refuses_naming_both_candidates(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror)
    done = orch("build", "--only", "workflowexecution", cwd=root)
    out = ok(done, 4)
    assert "no builder image qualifies for service 'workflowexecution'" in out
    assert f"{TIER1} [tier 1 (red-hat-public), 1.25.3]: go 1.25.3 does not satisfy >=1.25.4" in out
    assert re.search(
        rf"{re.escape(TIER3)} \[tier 2 \(internal-mirror, requires an exception\), 1\.25\.5\]: "
        rf".*no exception record covers {re.escape(TIER3)}",
        out,
    ), out
    assert "orch exception new --service workflowexecution --stage builder" in out
    # the lock was written on the way: both candidates probed
    lock = (root / "orch.lock").read_text()
    assert "1.25.3" in lock
    assert "1.25.5" in lock


# --- the exception in force ----------------------------------------------------------------------


def test_approved_exception_selects_the_mirror_for_the_named_service(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror, exceptions={"EXC-001": EXC_001})
    ok(orch("lock", cwd=root))
    services = plan_json(root)
    builder = services["workflowexecution"]["builder"]
    assert builder["image"] == TIER3
    assert builder["exception"] == "EXC-001"
    assert builder["toolchain_version"] == "1.25.5"
    assert builder["tier"] == 2
    assert builder["digest"] == index_digest(f"{mirror}/quay/golang:1.25-bookworm")
    # the service the exception does not name gets no builder (the plan writes "" for none), and why
    other = services["notification"]["builder"]
    assert not other["image"]
    assert other["exception"] is None
    assert other["digest"] is None
    assert any("exception EXC-001 does not name service 'notification'" in r for r in other["rejected"])


def test_exception_is_refused_for_a_service_it_does_not_name(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror, exceptions={"EXC-001": EXC_001})
    out = ok(orch("build", "--only", "notification", cwd=root), 4)
    assert "no builder image qualifies for service 'notification'" in out
    assert "exception EXC-001 does not name service 'notification' (it names: workflowexecution)" in out
    assert "orch exception new --service notification --stage builder" in out
    # the seed's real failure (applied to two services, naming one) is an audit error too
    audit = ok(orch("policy", "audit", cwd=root), 4)
    assert "used-beyond-scope EXC-001" in audit
    assert "service 'notification' has no qualifying builder without EXC-001" in audit


def test_expired_exception_allows_nothing(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror, services=("workflowexecution",), exceptions={"EXC-001": EXC_001})
    env = {"ORCH_TODAY": "2027-07-01"}
    out = ok(orch("build", "--only", "workflowexecution", cwd=root, env=env), 4)
    assert "exception EXC-001 expired on 2027-06-30" in out
    audit = ok(orch("policy", "audit", cwd=root, env=env), 4)
    assert re.search(
        r"policy/exceptions/EXC-001\.yaml:\d+: error expired EXC-001: expired on 2027-06-30 "
        r"\(1 day ago\)",
        audit,
    ), audit


def test_past_review_is_a_warning(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror, services=("workflowexecution",), exceptions={"EXC-001": EXC_001})
    env = {"ORCH_TODAY": "2026-03-01"}
    audit = ok(orch("policy", "audit", cwd=root, env=env), 0)
    assert re.search(r"EXC-001\.yaml:\d+: warning past-review EXC-001: past its review date 2026-02-09", audit), audit
    assert "0 errors, 1 warning" in audit
    items = json.loads(orch_stdout(root, "policy", "audit", "--offline", "--format", "json", env=env))
    assert [(i["kind"], i["severity"]) for i in items["items"]] == [("past-review", "warning")]
    # the plan still uses the exception, and says so
    builder = plan_json(root, env)["workflowexecution"]["builder"]
    assert builder["exception"] == "EXC-001"


# --- the revert condition ------------------------------------------------------------------------


def test_tier_one_catching_up_makes_the_exception_no_longer_needed(tmp_path: Path, run_id: str, mirror: str) -> None:
    # its own tier-1 prefix, so overwriting the tag affects no other test
    rh = f"{REGISTRY}/{run_id}-policy-upd/rh"
    _imagetools_copy(f"{rh}/ubi9/go-toolset:1.25", f"{mirror}/rh/ubi9/go-toolset:1.25")
    _imagetools_copy(f"{rh}/ubi9/ubi-minimal:9.6", f"{mirror}/rh/ubi9/ubi-minimal:9.6")
    root = seed_project(
        tmp_path,
        run_id,
        mirror,
        services=("workflowexecution",),
        exceptions={"EXC-001": EXC_001},
        rh_prefix=rh,
    )
    ok(orch("lock", cwd=root))
    assert plan_json(root)["workflowexecution"]["builder"]["exception"] == "EXC-001"
    old = index_digest(f"{rh}/ubi9/go-toolset:1.25")

    make_go_builder("1.25.5", f"{rh}/ubi9/go-toolset:1.25")
    new = index_digest(f"{rh}/ubi9/go-toolset:1.25")
    assert new != old
    out = orch_stdout(root, "lock", "--update")
    assert f"{TIER1}: moved {old} -> {new}" in out

    builder = plan_json(root)["workflowexecution"]["builder"]
    assert builder["image"] == TIER1
    assert builder["exception"] is None
    assert builder["tier"] == 1
    assert builder["toolchain_version"] == "1.25.5"
    assert builder["digest"] == new

    audit = ok(orch("policy", "audit", cwd=root), 0)
    assert re.search(
        rf"EXC-001\.yaml:\d+: warning no-longer-needed EXC-001: no longer needed: "
        rf"{re.escape(TIER1)} \(tier 1\) now carries go 1\.25\.5 which satisfies >=1\.25\.5",
        audit,
    ), audit
    assert "orch exception retire EXC-001" in audit
    assert " 0 errors" in audit


# --- Dockerfile lint -----------------------------------------------------------------------------

BAD_DOCKERFILES = {
    # line 2: a prohibited registry in a literal FROM
    "hub": """\
ARG RUNTIME_IMAGE
FROM docker.io/library/golang:1.25 AS builder
RUN go build -o /out/hub .
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/hub /usr/local/bin/hub
""",
    # line 3: a prohibited image hidden behind an ARG default
    "hidden": """\
ARG RUNTIME_IMAGE
ARG BASE=ghcr.io/x/y:1
FROM ${BASE} AS builder
RUN mkdir /out && touch /out/y
FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/y /y
""",
    # line 3: COPY --from an external prohibited image
    "copyfrom": """\
ARG RUNTIME_IMAGE
FROM ${RUNTIME_IMAGE}
COPY --from=ghcr.io/acme/tool:1 /t /t
""",
}


def goarch_dockerfile(name: str) -> str:
    text = go_dockerfile(name).replace("GOARCH=$TARGETARCH", "GOARCH=amd64")
    assert "GOARCH=amd64" in text
    return text


def goarch_run_line() -> int:
    """The line of the RUN instruction that hard-codes GOARCH. The GOARCH itself sits on a
    continuation line below it; orch reports the instruction's first line (dockerfile.py joins
    continuations, so the offset inside the instruction is lost)."""
    lines = goarch_dockerfile("goarch").splitlines()
    at = next(n for n, text in enumerate(lines, 1) if "GOARCH=amd64" in text)
    return next(n for n in range(at, 0, -1) if lines[n - 1].startswith("RUN "))


def lint_project(root: Path, run_id: str, prefix: str, dockerfiles: Mapping[str, str]) -> Path:
    lines = [
        "version: 1",
        "project: lint",
        f"registry: {REGISTRY}/{run_id}-policy/lint",
        "services:",
    ]
    for name in dockerfiles:
        lines += [
            f"  {name}:",
            f"    dockerfile: dockerfiles/{name}.Dockerfile",
            "    context: src",
            '    toolchain: {name: go, version: ">=1.25.4"}',
        ]
    return write_project(
        root,
        "\n".join(lines) + "\n",
        programs={n: go_main(n) for n in dockerfiles},
        dockerfiles=dockerfiles,
        policy=policy_text(f"{prefix}/rh", f"{prefix}/quay"),
    )


def test_policy_check_reports_each_finding_at_its_line(tmp_path: Path, run_id: str) -> None:
    prefix = f"{REGISTRY}/{run_id}-policy"
    root = lint_project(tmp_path, run_id, prefix, {**BAD_DOCKERFILES, "goarch": goarch_dockerfile("goarch")})
    goarch_line = goarch_run_line()
    expected = {
        ("dockerfiles/hub.Dockerfile", 2, "ORCH101", "error"),
        ("dockerfiles/hidden.Dockerfile", 3, "ORCH101", "error"),
        ("dockerfiles/copyfrom.Dockerfile", 3, "ORCH101", "error"),
        ("dockerfiles/goarch.Dockerfile", goarch_line, "ORCH120", "warning"),
    }

    text = ok(orch("policy", "check", cwd=root), 4)
    for file, line, rule, severity in expected:
        assert f"{file}:{line}: {severity} {rule}" in text, text
    assert "docker.io/library/golang:1.25" in text
    assert "ghcr.io/x/y:1" in text
    assert "ghcr.io/acme/tool:1" in text

    sarif = json.loads(orch("policy", "check", "--format", "sarif", cwd=root).stdout)
    found = set()
    for result in sarif["runs"][0]["results"]:
        loc = result["locations"][0]["physicalLocation"]
        found.add(
            (
                loc["artifactLocation"]["uri"],
                loc["region"]["startLine"],
                result["ruleId"],
                result["level"],
            )
        )
    assert expected <= found, found

    data = json.loads(orch("policy", "check", "--format", "json", cwd=root).stdout)
    assert data  # the JSON format parses too


def test_policy_check_with_only_the_goarch_warning_passes(tmp_path: Path, run_id: str) -> None:
    prefix = f"{REGISTRY}/{run_id}-policy"
    root = lint_project(tmp_path, run_id, prefix, {"goarch": goarch_dockerfile("goarch")})
    text = ok(orch("policy", "check", cwd=root), 0)
    where = f"dockerfiles/goarch.Dockerfile:{goarch_run_line()}"
    assert f"{where}: warning ORCH120 goarch: GOARCH is hard-coded to amd64" in text, text
    assert "error ORCH" not in text


# --- the exception life cycle --------------------------------------------------------------------


def test_exception_new_approve_retire(tmp_path: Path, run_id: str, mirror: str) -> None:
    root = seed_project(tmp_path, run_id, mirror, exceptions={"EXC-001": EXC_001})
    out = orch_stdout(
        root,
        "exception",
        "new",
        "--service",
        "notification",
        "--stage",
        "builder",
        "--by",
        "bob",
        env={"ORCH_TODAY": "2026-01-20"},
    )
    assert "EXC-002.yaml" in out
    assert "status: requested" in out
    record = yaml.safe_load((root / "policy" / "exceptions" / "EXC-002.yaml").read_text())
    assert record["id"] == "EXC-002"
    assert record["status"] == "requested"
    assert record["services"] == ["notification"]
    assert record["image"] == TIER3
    assert record["instead_of"] == TIER1
    request = (root / "policy" / "exceptions" / "EXC-002.md").read_text()
    assert f"`{TIER1}`" in request
    assert f"`{TIER3}`" in request
    assert "| 1.25.3 |" in request
    assert "| 1.25.5 |" in request
    assert "go 1.25.3 does not satisfy >=1.25.4" in request

    ok(
        orch(
            "exception",
            "approve",
            "EXC-002",
            "--by",
            "alice",
            cwd=root,
            env={"ORCH_TODAY": "2026-01-21"},
        )
    )
    listing = orch_stdout(root, "exception", "list")
    assert re.search(
        r"^EXC-002\s+approved\s+builder\s+" + re.escape(TIER3) + r"\s+services=notification",
        listing,
        re.M,
    ), listing
    approved = yaml.safe_load((root / "policy" / "exceptions" / "EXC-002.yaml").read_text())
    assert approved["approved_by"] == "alice"
    assert str(approved["approved_on"]) == "2026-01-21"

    # now both services have a builder, each under its own exception
    ok(orch("lock", cwd=root))
    services = plan_json(root, {"ORCH_TODAY": "2026-01-21"})
    assert services["workflowexecution"]["builder"]["exception"] == "EXC-001"
    assert services["notification"]["builder"]["exception"] == "EXC-002"

    ok(orch("exception", "retire", "EXC-001", cwd=root, env={"ORCH_TODAY": "2026-02-01"}))
    listing = orch_stdout(root, "exception", "list")
    assert re.search(r"^EXC-001\s+retired\s", listing, re.M), listing
    retired = yaml.safe_load((root / "policy" / "exceptions" / "EXC-001.yaml").read_text())
    assert retired["status"] == "retired"
    assert str(retired["retired_on"]) == "2026-02-01"
    # a retired exception allows nothing
    assert not plan_json(root, {"ORCH_TODAY": "2026-02-01"})["workflowexecution"]["builder"]["image"]
