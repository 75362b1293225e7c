"""`orch policy check`: Dockerfiles against the registry policy, from YAML and Dockerfile text."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from policy_fixtures import (
    EXC_001,
    MIRROR,
    ORCH_DOCKERFILE,
    SEED_DOCKERFILE,
    TIER1_125,
    Setup,
    go_service,
    make_project,
)

from orchestrator import plan
from orchestrator.dockerfile import parse_dockerfile
from orchestrator.policy import lint
from orchestrator.policy.lint import Finding, lint_errors, lint_project, lint_service
from orchestrator.policy.selection import BuilderChoice

TODAY = dt.date(2026, 1, 10)


def run(setup: Setup, *, today: dt.date = TODAY, chosen: str | None = None) -> list[Finding]:
    choices = None
    if chosen is not None:
        choices = {
            name: BuilderChoice(service=name, toolchain="go", requirement=">=1.25.5", image=chosen)
            for name in setup.project.services
        }
    return lint_project(setup.project, setup.policy, setup.parsed, today=today, choices=choices)


def rules(findings: list[Finding]) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.severity) for f in findings]


def lint_one(tmp_path: Path, dockerfile: str, **kwargs: object) -> list[Finding]:
    setup = make_project(tmp_path, {"app": dockerfile}, exceptions={"EXC-001": EXC_001})
    return run(setup, **kwargs)  # type: ignore[arg-type]


# --- external images ----------------------------------------------------------------------------


def test_orch_style_dockerfile_has_no_findings(tmp_path: Path) -> None:
    assert lint_one(tmp_path, ORCH_DOCKERFILE) == []


def test_orch_style_with_chosen_builder_has_no_findings(tmp_path: Path) -> None:
    assert lint_one(tmp_path, ORCH_DOCKERFILE, chosen=TIER1_125) == []


def test_docker_hub_from_is_an_error_at_its_line(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG RUNTIME_IMAGE
        FROM golang:1.25 AS builder
        RUN go build -o /app .
        FROM ${RUNTIME_IMAGE}
        COPY --from=builder /app /app
        """,
    )
    assert rules(findings) == [("ORCH101", 2, "error")]
    f = findings[0]
    assert f.file == "services/app/Dockerfile"
    assert f.service == "app"
    assert "docker.io/library/golang:1.25" in f.message
    assert "prohibited registry (docker.io)" in f.message
    assert "ARG BUILDER_IMAGE" in f.fix


def test_prohibited_image_hidden_behind_arg_names_the_arg(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG BASE=docker.io/library/golang:1.25
        ARG RUNTIME_IMAGE
        FROM ${BASE} AS builder
        RUN go build -o /app .
        FROM ${RUNTIME_IMAGE}
        COPY --from=builder /app /app
        """,
    )
    assert rules(findings) == [("ORCH101", 3, "error")]
    assert "FROM ${BASE} is docker.io/library/golang:1.25" in findings[0].message
    assert "hidden behind ARG BASE" in findings[0].message


def test_image_from_build_arg_says_where_it_is_set(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n    build_args: {BASE: 'ghcr.io/acme/go:1'}\n"
    setup = make_project(
        tmp_path,
        {"app": "ARG BASE\nARG RUNTIME_IMAGE\nFROM ${BASE} AS b\nFROM ${RUNTIME_IMAGE}\nCOPY --from=b / /\n"},
        services=services,
    )
    findings = run(setup)
    assert rules(findings) == [("ORCH101", 3, "error")]
    assert "ARG BASE set by services.yaml build_args" in findings[0].message


def test_copy_from_an_image_is_checked_at_its_line(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG RUNTIME_IMAGE
        FROM ${RUNTIME_IMAGE}
        COPY --from=ghcr.io/acme/tools:1.2 /bin/tool /usr/local/bin/tool
        """,
    )
    assert rules(findings) == [("ORCH101", 3, "error")]
    assert "COPY --from=ghcr.io/acme/tools:1.2" in findings[0].message


def test_run_mount_from_an_image_is_checked(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG BUILDER_IMAGE
        ARG RUNTIME_IMAGE
        FROM ${BUILDER_IMAGE} AS builder
        RUN --mount=type=bind,from=example.com/tools:1,target=/t /t/run
        FROM ${RUNTIME_IMAGE}
        COPY --from=builder /app /app
        """,
    )
    assert rules(findings) == [("ORCH102", 4, "error")]
    assert "in no approved tier" in findings[0].message


def test_unlisted_registry_is_an_error(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        "FROM example.com/go:1 AS builder\nARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\nCOPY --from=builder /app /app\n",
    )
    assert rules(findings) == [("ORCH102", 1, "error")]


def test_unpinned_builder_is_a_warning(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        "FROM registry.access.redhat.com/ubi9/go-toolset AS builder\n"
        "FROM registry.access.redhat.com/ubi9/ubi-minimal:9.5\n"
        "COPY --from=builder /app /app\n",
    )
    assert rules(findings) == [("ORCH104", 1, "warning")]


def test_unresolvable_reference_is_a_warning(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        "ARG BASE\nFROM ${BASE} AS builder\nARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\nCOPY --from=builder /app /app\n",
    )
    assert rules(findings) == [("ORCH105", 2, "warning")]
    assert "BASE has no default" in findings[0].message


def test_other_service_is_an_in_graph_dependency(tmp_path: Path) -> None:
    setup = make_project(
        tmp_path,
        {
            "platform-base": "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\nRUN microdnf -y upgrade\n",
            "app": "FROM platform-base\nCOPY app /app\n",
        },
    )
    assert run(setup) == []


# --- exceptions ---------------------------------------------------------------------------------


def test_seed_dockerfile_for_the_service_its_exception_names(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"workflowexecution": SEED_DOCKERFILE}, exceptions={"EXC-001": EXC_001})
    findings = run(setup)
    # the mirror is covered, ubi-minimal:latest is the runtime repository: only the GOARCH default
    assert rules(findings) == [("ORCH120", 6, "warning")]
    assert "GOARCH defaults to amd64" in findings[0].message
    assert "${GOARCH:-amd64}" in findings[0].message
    assert "GOARCH=$TARGETARCH" in findings[0].fix
    assert "--platform=$BUILDPLATFORM" in findings[0].fix


def test_seed_dockerfile_for_a_service_the_exception_does_not_name(tmp_path: Path) -> None:
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "notification": SEED_DOCKERFILE},
        exceptions={"EXC-001": EXC_001},
    )
    errors = lint_errors(run(setup))
    assert [(f.service, f.rule, f.line) for f in errors] == [("notification", "ORCH103", 2)]
    assert "does not name service 'notification'" in errors[0].message
    assert "EXC-001" in errors[0].fix


def test_expired_exception_is_an_error(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"workflowexecution": SEED_DOCKERFILE}, exceptions={"EXC-001": EXC_001})
    errors = lint_errors(run(setup, today=dt.date(2026, 5, 1)))
    assert [(f.rule, f.line) for f in errors] == [("ORCH103", 2)]
    assert "expired on 2026-04-09" in errors[0].message


def test_no_exception_at_all(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"workflowexecution": SEED_DOCKERFILE})
    errors = lint_errors(run(setup))
    assert [(f.rule, f.line) for f in errors] == [("ORCH103", 2)]
    assert f"no exception record covers {MIRROR}" in errors[0].message
    assert "orch exception new --service workflowexecution --stage builder" in errors[0].fix


def test_literal_builder_other_than_the_chosen_one(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"workflowexecution": SEED_DOCKERFILE}, exceptions={"EXC-001": EXC_001})
    findings = run(setup, chosen=TIER1_125)
    assert ("ORCH130", 2, "error") in rules(findings)
    f = next(f for f in findings if f.rule == "ORCH130")
    assert f"the policy chooses {TIER1_125} for this service" in f.message
    assert "ARG BUILDER_IMAGE" in f.fix


def test_literal_builder_equal_to_the_chosen_one_passes(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        f"FROM {TIER1_125}@sha256:{'a' * 64} AS builder\nARG RUNTIME_IMAGE\n"
        "FROM ${RUNTIME_IMAGE}\nCOPY --from=builder /app /app\n",
        chosen=TIER1_125,
    )
    assert findings == []


# --- the runtime --------------------------------------------------------------------------------


def test_final_stage_not_the_runtime_is_an_error(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG BUILDER_IMAGE
        FROM ${BUILDER_IMAGE} AS builder
        RUN go build -o /app .
        FROM registry.access.redhat.com/ubi9/ubi:9.5
        COPY --from=builder /app /app
        """,
    )
    assert rules(findings) == [("ORCH110", 4, "error")]
    assert "registry.access.redhat.com/ubi9/ubi-minimal:9.5" in findings[0].message
    assert "FROM ${RUNTIME_IMAGE}" in findings[0].fix


def test_final_stage_runtime_with_another_tag_or_digest_passes(tmp_path: Path) -> None:
    text = f"FROM registry.access.redhat.com/ubi9/ubi-minimal@sha256:{'b' * 64}\n"
    assert lint_one(tmp_path, text) == []


def test_final_stage_through_an_earlier_stage(tmp_path: Path) -> None:
    text = "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE} AS base\nRUN true\nFROM base\n"
    assert lint_one(tmp_path, text) == []


def test_target_selects_the_final_stage(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n    target: release\n"
    setup = make_project(
        tmp_path,
        {
            "app": "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE} AS release\n"
            "FROM registry.access.redhat.com/ubi9/ubi:9.5 AS debug\n"
        },
        services=services,
    )
    assert run(setup) == []


def test_final_stage_through_a_runtime_based_service(tmp_path: Path) -> None:
    setup = make_project(
        tmp_path,
        {
            "platform-base": "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n",
            "middle": "FROM platform-base\n",
            "app": "ARG BUILDER_IMAGE\nFROM ${BUILDER_IMAGE} AS b\nFROM middle\nCOPY --from=b / /\n",
        },
    )
    assert run(setup) == []


def test_final_stage_through_a_service_not_on_the_runtime(tmp_path: Path) -> None:
    setup = make_project(
        tmp_path,
        {
            "platform-base": "FROM registry.access.redhat.com/ubi9/ubi:9.5\n",
            "app": "ARG BUILDER_IMAGE\nFROM ${BUILDER_IMAGE} AS b\nFROM platform-base\nCOPY --from=b / /\n",
        },
    )
    findings = run(setup)
    assert [(f.service, f.rule, f.line) for f in findings] == [
        ("app", "ORCH110", 3),
        ("platform-base", "ORCH110", 1),
    ]
    assert (
        "FROM platform-base, whose final stage is FROM registry.access.redhat.com/ubi9/ubi:9.5" in findings[0].message
    )


def test_runtime_exception_lets_another_final_stage_pass(tmp_path: Path) -> None:
    micro = "quay.io/jordigilh/ubi-micro:9"
    record = textwrap.dedent(
        f"""\
        id: EXC-007
        status: approved
        services: [app]
        stage: runtime
        image: {micro}
        reason: distroless runtime
        approved_by: sec
        approved_on: 2026-01-01
        expires: 2026-06-01
        """
    )
    text = f"ARG BUILDER_IMAGE\nFROM ${{BUILDER_IMAGE}} AS b\nFROM {micro}\nCOPY --from=b / /\n"
    setup = make_project(tmp_path / "ok", {"app": text}, exceptions={"EXC-007": record})
    assert run(setup) == []
    setup = make_project(tmp_path / "none", {"app": text})
    assert [f.rule for f in run(setup)] == ["ORCH103", "ORCH110"]


# --- architecture -------------------------------------------------------------------------------


def test_hard_coded_goarch_in_run_is_a_warning_at_its_line(tmp_path: Path) -> None:
    findings = lint_one(
        tmp_path,
        """\
        ARG BUILDER_IMAGE
        ARG RUNTIME_IMAGE
        FROM ${BUILDER_IMAGE} AS builder
        WORKDIR /src
        RUN CGO_ENABLED=0 GOARCH=amd64 go build -o /app .
        FROM ${RUNTIME_IMAGE}
        COPY --from=builder /app /app
        """,
    )
    assert rules(findings) == [("ORCH120", 5, "warning")]
    assert "GOARCH is hard-coded to amd64 (`GOARCH=amd64`)" in findings[0].message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ENV GOARCH=arm64", True),
        ("ENV GOARCH arm64", True),
        ("ARG GOARCH=amd64", True),
        ('RUN GOARCH="amd64" go build .', True),
        ("RUN GOARCH=${TARGETARCH:-amd64} go build .", True),
        ("RUN GOARCH=$TARGETARCH go build .", False),
        ("RUN GOARCH=${TARGETARCH} go build .", False),
        ("ARG GOARCH", False),
        ("RUN echo $GOARCH", False),
        ("RUN go env GOARCH", False),
    ],
)
def test_architecture_forms(tmp_path: Path, line: str, expected: bool) -> None:
    text = (
        f"ARG BUILDER_IMAGE\nARG RUNTIME_IMAGE\nFROM ${{BUILDER_IMAGE}} AS b\n{line}\n"
        "FROM ${RUNTIME_IMAGE}\nCOPY --from=b / /\n"
    )
    findings = lint_one(tmp_path, text)
    assert rules(findings) == ([("ORCH120", 4, "warning")] if expected else [])


def test_global_arg_goarch_default(tmp_path: Path) -> None:
    text = "ARG GOARCH=amd64\nARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n"
    assert rules(lint_one(tmp_path, text)) == [("ORCH120", 1, "warning")]


def test_goarch_in_a_heredoc_points_at_its_line(tmp_path: Path) -> None:
    text = (
        "ARG BUILDER_IMAGE\nARG RUNTIME_IMAGE\nFROM ${BUILDER_IMAGE} AS b\n"
        "RUN <<EOF\nset -e\nGOARCH=arm64 go build .\nEOF\n"
        "FROM ${RUNTIME_IMAGE}\nCOPY --from=b / /\n"
    )
    assert rules(lint_one(tmp_path, text)) == [("ORCH120", 6, "warning")]


def test_literal_platform_on_the_final_stage(tmp_path: Path) -> None:
    text = "ARG RUNTIME_IMAGE\nFROM --platform=linux/amd64 ${RUNTIME_IMAGE}\n"
    findings = lint_one(tmp_path, text)
    assert rules(findings) == [("ORCH121", 2, "warning")]
    assert "--platform=linux/amd64" in findings[0].message


def test_platform_variable_on_the_final_stage_is_fine(tmp_path: Path) -> None:
    text = "ARG RUNTIME_IMAGE\nFROM --platform=$TARGETPLATFORM ${RUNTIME_IMAGE}\n"
    assert lint_one(tmp_path, text) == []


def test_stages_the_target_does_not_need_are_not_linted(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n    target: release\n"
    setup = make_project(
        tmp_path,
        {
            "app": "FROM golang:1.25 AS dev\nRUN GOARCH=amd64 go build .\n"
            "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE} AS release\n"
        },
        services=services,
    )
    assert run(setup) == []


def test_unknown_target_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n    target: nope\n"
    setup = make_project(tmp_path, {"app": "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n"}, services=services)
    findings = run(setup)
    assert [f.rule for f in findings] == ["ORCH110"]
    assert "no stage named 'nope'" in findings[0].message


# --- lint_service directly, and output ----------------------------------------------------------


def test_lint_service_directly(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"app": ORCH_DOCKERFILE})
    df = parse_dockerfile("FROM docker.io/library/golang:1.25 AS b\nFROM ubi9\nCOPY --from=b / /\n", path="X")
    findings = lint_service(
        "app",
        setup.project.services["app"],
        df,
        policy=setup.policy,
        services=setup.project.services,
        dockerfiles={"app": df},
        today=TODAY,
    )
    assert [(f.file, f.rule, f.line) for f in findings] == [
        ("X", "ORCH101", 1),
        ("X", "ORCH101", 2),
        ("X", "ORCH110", 2),
    ]


def test_orch_args_match_the_plan() -> None:
    assert lint.ORCH_ARGS == plan.ORCH_ARGS


def _mixed(tmp_path: Path) -> list[Finding]:
    setup = make_project(
        tmp_path,
        {
            "app": "FROM golang:1.25 AS builder\nRUN GOARCH=amd64 go build .\n"
            "ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\nCOPY --from=builder /app /app\n",
            "web": ORCH_DOCKERFILE,
        },
        services=go_service("app") + go_service("web"),
    )
    return run(setup)


def test_text_output(tmp_path: Path) -> None:
    text = lint.to_text(_mixed(tmp_path))
    lines = text.splitlines()
    assert lines[0].startswith(
        "services/app/Dockerfile:1: error ORCH101 app: FROM golang:1.25 is "
        "docker.io/library/golang:1.25: prohibited registry (docker.io) (fix: "
    )
    assert lines[1].startswith("services/app/Dockerfile:2: warning ORCH120 app: ")
    assert lines[-1] == "1 error, 1 warning"


def test_json_output(tmp_path: Path) -> None:
    data = json.loads(lint.to_json(_mixed(tmp_path)))
    assert data["errors"] == 1
    assert data["warnings"] == 1
    assert data["findings"][0] == {
        "file": "services/app/Dockerfile",
        "line": 1,
        "rule": "ORCH101",
        "severity": "error",
        "service": "app",
        "message": data["findings"][0]["message"],
        "fix": data["findings"][0]["fix"],
    }


def test_sarif_output(tmp_path: Path) -> None:
    log = json.loads(lint.to_sarif(_mixed(tmp_path), tool_version="0.1.0"))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "orch"
    assert driver["version"] == "0.1.0"
    assert [r["id"] for r in driver["rules"]] == ["ORCH101", "ORCH120"]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["help"]["text"]
    results = run_["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("ORCH101", "error"),
        ("ORCH120", "warning"),
    ]
    for result, line in zip(results, (1, 2), strict=True):
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "services/app/Dockerfile"
        assert loc["region"]["startLine"] == line
        assert result["message"]["text"].startswith("app: ")


def test_sarif_with_no_findings_is_valid() -> None:
    log = json.loads(lint.to_sarif([], tool_version="0.1.0"))
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []
