"""`orch policy audit`: the seed's exception against dates, scope, use and its revert condition."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from policy_fixtures import (
    EXC_001,
    MIRROR,
    ORCH_DOCKERFILE,
    RUNTIME,
    SEED_DOCKERFILE,
    TIER1_124,
    TIER1_125,
    Setup,
    choices_for,
    fact,
    facts,
    make_project,
    seed_facts,
)

from orchestrator.models import ResolvedImage
from orchestrator.policy import audit as audit_mod
from orchestrator.policy.audit import AuditItem, audit, audit_errors

DAY_AFTER = dt.date(2026, 1, 10)


def run(setup: Setup, today: dt.date, found: dict[str, ResolvedImage] | None = None) -> list[AuditItem]:
    found = found if found is not None else seed_facts()
    return audit(
        setup.policy,
        setup.project,
        setup.parsed,
        facts=found,
        choices=choices_for(setup, found, today),
        today=today,
    )


def kinds(items: list[AuditItem]) -> list[tuple[str, str, str]]:
    return [(i.exception, i.kind, i.severity) for i in items]


def one_service(tmp_path: Path, record: str = EXC_001) -> Setup:
    return make_project(tmp_path, {"workflowexecution": ORCH_DOCKERFILE}, exceptions={"EXC-001": record})


def test_in_force_and_used(tmp_path: Path) -> None:
    items = run(one_service(tmp_path), DAY_AFTER)
    assert kinds(items) == [("EXC-001", "ok", "info")]
    assert "used by workflowexecution" in items[0].message
    assert items[0].file == "policy/exceptions/EXC-001.yaml"


def test_expired_is_an_error(tmp_path: Path) -> None:
    items = run(one_service(tmp_path), dt.date(2026, 5, 1))
    assert ("EXC-001", "expired", "error") in kinds(items)
    assert ("EXC-001", "past-review", "warning") in kinds(items)
    expired = next(i for i in items if i.kind == "expired")
    assert "expired on 2026-04-09 (22 days ago)" in expired.message
    assert "orch exception retire EXC-001" in expired.message
    assert expired.line == 13  # the `expires:` key
    assert audit_errors(items) == [expired]


def test_past_review_is_a_warning(tmp_path: Path) -> None:
    items = run(one_service(tmp_path), dt.date(2026, 2, 15))
    assert kinds(items) == [("EXC-001", "past-review", "warning")]
    assert "past its review date 2026-02-09" in items[0].message
    assert items[0].line == 12
    assert audit_errors(items) == []


def test_expiring_soon_is_a_warning(tmp_path: Path) -> None:
    items = run(one_service(tmp_path), dt.date(2026, 3, 20))
    assert ("EXC-001", "expiring-soon", "warning") in kinds(items)
    assert "expires in 20 days (2026-04-09)" in next(i.message for i in items if i.kind == "expiring-soon")


def test_needed_by_a_service_it_does_not_name_is_an_error(tmp_path: Path) -> None:
    # the seed: the exception names workflowexecution, a second Go service gets the same builder
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "notification": ORCH_DOCKERFILE},
        exceptions={"EXC-001": EXC_001},
    )
    items = run(setup, DAY_AFTER)
    assert kinds(items) == [("EXC-001", "used-beyond-scope", "error")]
    assert "service 'notification' has no qualifying builder without EXC-001" in items[0].message
    assert "names only workflowexecution" in items[0].message
    assert items[0].line == 4  # the `services:` key


def test_named_literally_by_a_service_it_does_not_name_is_an_error(tmp_path: Path) -> None:
    services = (
        "  workflowexecution:\n    dockerfile: services/workflowexecution/Dockerfile\n"
        "    toolchain: {name: go, version: '>=1.25.5'}\n"
        "  tools:\n    dockerfile: services/tools/Dockerfile\n"
    )
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "tools": SEED_DOCKERFILE},
        services=services,
        exceptions={"EXC-001": EXC_001},
    )
    items = run(setup, DAY_AFTER)
    assert kinds(items) == [("EXC-001", "used-beyond-scope", "error")]
    assert f"the Dockerfile of service 'tools' names {MIRROR}" in items[0].message


def test_no_longer_needed_when_tier_one_carries_the_fix(tmp_path: Path) -> None:
    # the seed's Phase 3: Red Hat ships go-toolset:1.25 with Go 1.25.5
    items = run(one_service(tmp_path), DAY_AFTER, seed_facts(tier1_125="1.25.5"))
    assert kinds(items) == [
        ("EXC-001", "unused", "warning"),
        ("EXC-001", "no-longer-needed", "warning"),
    ]
    assert items[1].message == (
        f"no longer needed: {TIER1_125} (tier 1) now carries go 1.25.5 which satisfies "
        ">=1.25.5: retire it with `orch exception retire EXC-001`"
    )
    assert items[1].line == 14  # revert_when


def test_not_yet_revertible_when_tier_one_lacks_a_platform(tmp_path: Path) -> None:
    found = facts(
        fact(TIER1_124, "1.24.6"),
        fact(TIER1_125, "1.25.5", platforms=["linux/amd64"]),
        fact(MIRROR, "1.25.5"),
        fact(RUNTIME),
    )
    items = run(one_service(tmp_path), DAY_AFTER, found)
    assert "no-longer-needed" not in [i.kind for i in items]


def test_unused_exception_is_a_warning(tmp_path: Path) -> None:
    record = EXC_001.replace(f"image: {MIRROR}", "image: quay.io/jordigilh/rust:1.80")
    items = run(one_service(tmp_path, record), DAY_AFTER)
    assert kinds(items) == [("EXC-001", "unused", "warning")]
    assert "retire it with `orch exception retire EXC-001`" in items[0].message


def test_retired_is_info_only(tmp_path: Path) -> None:
    record = EXC_001.replace("status: approved", "status: retired") + "retired_on: 2026-03-01\n"
    items = run(one_service(tmp_path, record), dt.date(2026, 6, 1))
    assert kinds(items) == [("EXC-001", "retired", "info")]
    assert items[0].message == "retired on 2026-03-01"


def test_requested_is_info_only(tmp_path: Path) -> None:
    record = EXC_001.replace("status: approved", "status: requested")
    items = run(one_service(tmp_path, record), DAY_AFTER)
    assert kinds(items) == [("EXC-001", "ok", "info")]
    assert "orch exception approve EXC-001 --by NAME" in items[0].message


def test_several_records(tmp_path: Path) -> None:
    other = textwrap.dedent(
        """\
        id: EXC-002
        status: approved
        services: [workflowexecution]
        image: quay.io/jordigilh/rust:1.80
        reason: test
        expires: 2026-01-01
        """
    )
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE},
        exceptions={"EXC-001": EXC_001, "EXC-002": other},
    )
    items = run(setup, DAY_AFTER)
    assert kinds(items) == [("EXC-001", "ok", "info"), ("EXC-002", "expired", "error")]


def _seed_state(tmp_path: Path) -> list[AuditItem]:
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "notification": ORCH_DOCKERFILE},
        exceptions={"EXC-001": EXC_001},
    )
    return run(setup, dt.date(2026, 5, 1), seed_facts(tier1_125="1.25.5"))


def test_text_and_json_output(tmp_path: Path) -> None:
    items = _seed_state(tmp_path)
    text = audit_mod.to_text(items)
    assert "policy/exceptions/EXC-001.yaml:13: error expired EXC-001: expired on 2026-04-09" in text
    assert text.splitlines()[-1] == "1 exception record(s): 1 error, 2 warnings"
    data = json.loads(audit_mod.to_json(items))
    assert data["errors"] == 1
    assert [i["rule"] for i in data["items"]] == ["ORCH201", "ORCH202", "ORCH206"]


def test_sarif_output(tmp_path: Path) -> None:
    items = _seed_state(tmp_path)
    log = json.loads(audit_mod.to_sarif(items, tool_version="0.1.0"))
    assert log["version"] == "2.1.0"
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "orch"
    results = log["runs"][0]["results"]
    assert [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in results
    ] == [
        ("ORCH201", "error", "policy/exceptions/EXC-001.yaml", 13),
        ("ORCH202", "warning", "policy/exceptions/EXC-001.yaml", 12),
        ("ORCH206", "warning", "policy/exceptions/EXC-001.yaml", 14),
    ]
    assert {r["id"] for r in driver["rules"]} == {"ORCH201", "ORCH202", "ORCH206"}


def test_sarif_leaves_out_ok_and_keeps_retired_as_note(tmp_path: Path) -> None:
    items = run(one_service(tmp_path), DAY_AFTER)
    log = json.loads(audit_mod.to_sarif(items, tool_version="0.1.0"))
    assert log["runs"][0]["results"] == []
    retired = AuditItem("EXC-9", "retired", "info", "retired", "x.yaml", None)
    log = json.loads(audit_mod.to_sarif([retired], tool_version="0.1.0"))
    result = log["runs"][0]["results"][0]
    assert result["level"] == "note"
    assert "region" not in result["locations"][0]["physicalLocation"]
