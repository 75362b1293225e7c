"""Exception records: status changes that load back, and drafting a request from what orch found."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from policy_fixtures import (
    EXC_001,
    MIRROR,
    ORCH_DOCKERFILE,
    TIER1_124,
    TIER1_125,
    Setup,
    choices_for,
    make_project,
    seed_facts,
)

from orchestrator.config import load_policy
from orchestrator.errors import ExitCode, PolicyError, UsageError
from orchestrator.policy.exceptions import draft, edit_keys, next_id, set_status, yaml_scalar
from orchestrator.policy.refs import normalise

TODAY = dt.date(2026, 1, 9)
REQUESTED = (
    EXC_001.replace("status: approved", "status: requested  # waiting for security")
    .replace("approved_by: jgil\n", "approved_by: null\n")
    .replace("approved_on: 2026-01-09\n", "approved_on: null\n")
)


def setup_with(tmp_path: Path, record: str, services: tuple[str, ...] = ("workflowexecution",)) -> Setup:
    return make_project(tmp_path, dict.fromkeys(services, ORCH_DOCKERFILE), exceptions={"EXC-001": record})


def write_and_reload(setup: Setup, text: str):  # type: ignore[no-untyped-def]
    loaded = setup.policy.exceptions[0]
    loaded.file.write_text(text)
    policy = load_policy(setup.policy.directory)
    record = policy.exception("EXC-001")
    assert record is not None
    return record.record


# --- set_status ---------------------------------------------------------------------------------


def test_approve_sets_the_approver_and_date_and_keeps_the_rest(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, REQUESTED)
    text = set_status(setup.policy.exceptions[0], "approved", by="sec-team", on=TODAY)
    assert text.startswith("# ADR-028 Exception #001\nid: EXC-001\nstatus: approved  # waiting")
    assert "approved_by: sec-team\n" in text
    assert "approved_on: 2026-01-09\n" in text
    # key order as written
    keys = [ln.split(":")[0] for ln in text.splitlines() if ln and ln[0].isalpha()]
    assert keys[:4] == ["id", "status", "services", "stage"]
    record = write_and_reload(setup, text)
    assert record.status == "approved"
    assert record.approved_by == "sec-team"
    assert record.approved_on == TODAY
    assert record.revert_when is not None
    assert record.revert_when.version == ">=1.25.5"


def test_retire_sets_retired_on(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, EXC_001)
    text = set_status(setup.policy.exceptions[0], "retired", by=None, on=dt.date(2026, 3, 1))
    assert text.rstrip().endswith("retired_on: 2026-03-01")
    record = write_and_reload(setup, text)
    assert record.status == "retired"
    assert record.retired_on == dt.date(2026, 3, 1)
    assert record.approved_by == "jgil"


def test_retire_replaces_an_existing_retired_on(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, EXC_001 + "retired_on: null  # set by orch\n")
    text = set_status(setup.policy.exceptions[0], "retired", by=None, on=dt.date(2026, 3, 1))
    assert text.count("retired_on:") == 1
    assert "retired_on: 2026-03-01  # set by orch\n" in text


def test_approve_appends_missing_keys(tmp_path: Path) -> None:
    minimal = "id: EXC-001\nstatus: requested\nservices: [a]\nimage: x.io/a/b:1\nreason: r\nexpires: 2026-06-01"
    setup = setup_with(tmp_path, minimal)
    text = set_status(setup.policy.exceptions[0], "approved", by="Jane Doe: security", on=TODAY)
    record = write_and_reload(setup, text)
    assert record.approved_by == "Jane Doe: security"
    assert record.approved_on == TODAY


def test_approve_needs_a_name(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, REQUESTED)
    with pytest.raises(UsageError, match="needs the approver's name") as info:
        set_status(setup.policy.exceptions[0], "approved", by=None, on=TODAY)
    assert info.value.exit_code == ExitCode.USAGE


def test_approving_an_expired_request_is_refused(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, REQUESTED)
    with pytest.raises(UsageError, match="expired on 2026-04-09"):
        set_status(setup.policy.exceptions[0], "approved", by="x", on=dt.date(2026, 5, 1))


@pytest.mark.parametrize(
    ("start", "status", "message"),
    [
        ("approved", "approved", "already approved"),
        ("retired", "approved", "it cannot become approved"),
        ("approved", "rejected", "it cannot become rejected"),
        ("rejected", "retired", "it cannot become retired"),
    ],
)
def test_transitions_that_make_no_sense(tmp_path: Path, start: str, status: str, message: str) -> None:
    setup = setup_with(tmp_path, EXC_001.replace("status: approved", f"status: {start}"))
    with pytest.raises(UsageError, match=message):
        set_status(setup.policy.exceptions[0], status, by="x", on=TODAY)  # type: ignore[arg-type]


def test_yaml_scalar_reads_back() -> None:
    for value in ["jgil", "Jane Doe", "yes", "null", "1.0", "a: b", "#x", "2026-01-01", "o'k"]:
        assert yaml.safe_load(f"k: {yaml_scalar(value)}")["k"] == value


def test_edit_keys_drops_a_block_value() -> None:
    text = "status: requested\napproved_by:\n  - a\n  - b\nexpires: 2026-01-01\n"
    assert edit_keys(text, {"approved_by": "x"}) == ("status: requested\napproved_by: x\nexpires: 2026-01-01\n")


# --- drafting -----------------------------------------------------------------------------------


def _draft(tmp_path: Path, *, record: str | None = None, service: str = "notification"):  # type: ignore[no-untyped-def]
    setup = make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "notification": ORCH_DOCKERFILE},
        exceptions={"EXC-001": record or EXC_001},
    )
    found = seed_facts()
    choices = choices_for(setup, found, TODAY)
    result = draft(
        service=service,
        stage="builder",
        project=setup.project,
        policy=setup.policy,
        choice=choices[service],
        facts=found,
        today=TODAY,
        requested_by="jgil",
    )
    return setup, found, result


def test_draft_record_loads_back(tmp_path: Path) -> None:
    setup, _, (exc_id, record_text, _) = _draft(tmp_path)
    assert exc_id == "EXC-002"
    (setup.policy.directory / "exceptions" / f"{exc_id}.yaml").write_text(record_text)
    policy = load_policy(setup.policy.directory)
    loaded = policy.exception("EXC-002")
    assert loaded is not None
    record = loaded.record
    assert record.status == "requested"
    assert record.services == ("notification",)
    assert record.stage == "builder"
    assert record.image == MIRROR
    assert record.instead_of == TIER1_125  # the best tier-1 candidate (1.25.3 beats 1.24.6)
    assert record.requested_by == "jgil"
    assert record.approved_by is None
    assert record.approved_on is None
    assert record.review_by == dt.date(2026, 2, 8)
    assert record.expires == dt.date(2026, 4, 9)
    assert record.revert_when is not None
    assert (record.revert_when.toolchain, record.revert_when.version, record.revert_when.tier) == (
        "go",
        ">=1.25.5",
        1,
    )
    # and it can then be approved
    text = set_status(loaded, "approved", by="sec", on=TODAY)
    assert "approved_by: sec" in text


def test_draft_markdown_names_every_candidate_with_version_and_digest(tmp_path: Path) -> None:
    _, found, (exc_id, _, markdown) = _draft(tmp_path)
    for heading in (
        "## 1. Technology Requirement",
        "## 2. Catalog Search Results",
        "## 3. Proposed Alternative Image",
        "## 4. Security Assessment",
        "## 5. Justification",
        "## 6. Mitigation Plan",
        "## 7. Approval",
    ):
        assert heading in markdown
    assert "- **Version required**: `>=1.25.5`" in markdown
    assert "- **Platforms**: linux/amd64, linux/arm64" in markdown
    rows = [ln for ln in markdown.splitlines() if ln.startswith("| `")]
    assert len(rows) == 3
    tier1, tier1b, mirror = rows
    assert f"`{TIER1_124}`" in tier1
    assert "| 1.24.6 |" in tier1
    assert f"`{TIER1_125}`" in tier1b
    assert "| 1.25.3 |" in tier1b
    assert "go 1.25.3 does not satisfy >=1.25.5" in tier1b
    assert f"`{MIRROR}`" in mirror
    assert "| 1.25.5 |" in mirror
    assert "needs an exception" in mirror
    for image in (TIER1_124, TIER1_125, MIRROR):
        assert found[normalise(image)].digest in markdown
    assert f"- **Image**: `{MIRROR}`" in markdown
    assert "- **go version**: 1.25.5" in markdown
    assert f"- **Instead of**: `{TIER1_125}` (go 1.25.3)" in markdown
    assert "TODO" in markdown.split("## 4. Security Assessment")[1]
    assert "a tier-1 `go` image carries a version satisfying `>=1.25.5`" in markdown
    assert f"run `orch exception approve {exc_id} --by NAME`" in markdown


def test_draft_refuses_a_service_that_needs_no_exception(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"needs no new exception.*under exception EXC-001"):
        _draft(tmp_path, service="workflowexecution")


def test_draft_refuses_when_nothing_would_qualify(tmp_path: Path) -> None:
    setup = make_project(tmp_path, {"app": ORCH_DOCKERFILE})
    found = seed_facts()
    found = {k: v.model_copy(update={"toolchain_version": "1.24.0"}) for k, v in found.items()}
    choice = choices_for(setup, found, TODAY)["app"]
    with pytest.raises(PolicyError, match="would qualify even with an exception"):
        draft(
            service="app",
            stage="builder",
            project=setup.project,
            policy=setup.policy,
            choice=choice,
            facts=found,
            today=TODAY,
            requested_by="me",
        )


def test_next_id_counts_records_and_files(tmp_path: Path) -> None:
    setup = setup_with(tmp_path, EXC_001)
    assert next_id(setup.policy) == "EXC-002"
    (setup.policy.directory / "exceptions" / "EXC-041.md").write_text("draft")
    assert next_id(setup.policy) == "EXC-042"


def test_draft_yaml_quotes_what_needs_quoting(tmp_path: Path) -> None:
    _, _, (_, record_text, _) = _draft(tmp_path)
    assert 'version: ">=1.25.5"' in record_text
    assert json.dumps(MIRROR) in record_text
