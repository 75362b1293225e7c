"""Builder selection, pure: facts written by hand, exceptions from YAML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from policy_fixtures import (
    EXC_001,
    MIRROR,
    ORCH_DOCKERFILE,
    POLICY,
    RUNTIME,
    TIER1_124,
    TIER1_125,
    Setup,
    fact,
    facts,
    make_project,
    seed_facts,
)

from orchestrator.errors import ExitCode, PolicyError
from orchestrator.models import ResolvedImage
from orchestrator.policy.selection import BuilderChoice, choose_builder, require_builder

TODAY = dt.date(2026, 1, 10)


def choose(
    setup: Setup,
    service: str,
    found: dict[str, ResolvedImage] | None = None,
    *,
    today: dt.date = TODAY,
) -> BuilderChoice:
    choice = choose_builder(
        setup.policy,
        service=service,
        spec=setup.project.services[service],
        platforms=setup.project.platforms_of(service),
        facts=found if found is not None else seed_facts(),
        today=today,
    )
    assert choice is not None
    return choice


def two_services(tmp_path: Path, record: str = EXC_001, policy: str = POLICY) -> Setup:
    return make_project(
        tmp_path,
        {"workflowexecution": ORCH_DOCKERFILE, "notification": ORCH_DOCKERFILE},
        exceptions={"EXC-001": record},
        policy=policy,
    )


def reasons(choice: BuilderChoice, image: str) -> tuple[str, ...]:
    return next(r.reasons for r in choice.rejected if r.image == image)


def test_tier_one_too_old_falls_to_tier_three_with_an_exception(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "workflowexecution")
    assert choice.chosen
    assert (choice.image, choice.tier, choice.version, choice.exception) == (
        MIRROR,
        3,
        "1.25.5",
        "EXC-001",
    )
    assert [r.image for r in choice.rejected] == [TIER1_124, TIER1_125]
    assert reasons(choice, TIER1_125)[0] == "go 1.25.3 does not satisfy >=1.25.5"
    assert choice.digest == seed_facts()["quay.io/jordigilh/golang:1.25-bookworm"].digest


def test_tier_one_preferred_when_it_satisfies(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "workflowexecution", seed_facts(tier1_125="1.25.5"))
    assert (choice.image, choice.tier, choice.exception) == (TIER1_125, 1, None)


def test_exception_not_naming_the_service_is_rejected(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "notification")
    assert not choice.chosen
    assert reasons(choice, MIRROR) == (
        "tier 3 (internal-mirror, requires an exception): exception EXC-001 does not name "
        "service 'notification' (it names: workflowexecution)",
    )


def test_expired_exception_is_rejected(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "workflowexecution", today=dt.date(2026, 4, 10))
    assert not choice.chosen
    assert reasons(choice, MIRROR) == (
        "tier 3 (internal-mirror, requires an exception): exception EXC-001 expired on 2026-04-09",
    )


def test_requested_exception_is_rejected(tmp_path: Path) -> None:
    setup = two_services(tmp_path, EXC_001.replace("status: approved", "status: requested"))
    choice = choose(setup, "workflowexecution")
    assert not choice.chosen
    assert "exception EXC-001 is requested, not approved" in reasons(choice, MIRROR)[0]


def test_exception_warnings_reach_the_choice(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "workflowexecution", today=dt.date(2026, 3, 20))
    assert choice.exception == "EXC-001"
    assert any("past its review date 2026-02-09" in w for w in choice.warnings)
    assert any("expires in 20 days" in w for w in choice.warnings)


def test_platform_missing_from_the_index_is_rejected_per_platform(tmp_path: Path) -> None:
    found = facts(
        fact(TIER1_124, "1.24.6"),
        fact(TIER1_125, "1.25.5", platforms=["linux/amd64"]),
        fact(MIRROR, "1.25.5", platforms=[]),
        fact(RUNTIME),
    )
    choice = choose(two_services(tmp_path), "workflowexecution", found)
    assert not choice.chosen
    assert reasons(choice, TIER1_125) == ("linux/arm64: the image index has no linux/arm64 manifest",)
    assert reasons(choice, MIRROR) == (
        "linux/amd64: the image index has no linux/amd64 manifest",
        "linux/arm64: the image index has no linux/arm64 manifest",
    )


def test_blocking_advisory_rejects(tmp_path: Path) -> None:
    policy = POLICY + (
        '  - id: GO-BAD\n    toolchain: go\n    versions: "==1.25.5"\n    summary: miscompiles everything\n'
    )
    setup = two_services(tmp_path, policy=policy)
    choice = choose(setup, "workflowexecution", seed_facts(tier1_125="1.25.5"))
    assert not choice.chosen
    assert reasons(choice, TIER1_125) == ("advisory GO-BAD (all platforms): miscompiles everything",)


def test_emulated_advisory_only_warns(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n    toolchain: {name: go, version: '>=1.25.0'}\n"
    setup = make_project(tmp_path, {"app": ORCH_DOCKERFILE}, services=services)
    choice = choose(setup, "app")
    assert (choice.image, choice.version) == (TIER1_125, "1.25.3")
    assert len(choice.warnings) == 1
    assert "advisory GO-69255 when emulated (amd64)" in choice.warnings[0]


def test_unresolved_candidate_is_reported(tmp_path: Path) -> None:
    found = facts(fact(MIRROR, "1.25.5"))
    choice = choose(two_services(tmp_path), "workflowexecution", found)
    assert choice.image == MIRROR
    assert choice.unresolved == (TIER1_124, TIER1_125)
    assert "not resolved yet (run `orch lock`)" in reasons(choice, TIER1_124)


def test_no_toolchain_no_choice(tmp_path: Path) -> None:
    services = "  app:\n    dockerfile: services/app/Dockerfile\n"
    setup = make_project(tmp_path, {"app": ORCH_DOCKERFILE}, services=services)
    assert (
        choose_builder(
            setup.policy,
            service="app",
            spec=setup.project.services["app"],
            platforms=("linux/amd64",),
            facts=seed_facts(),
            today=TODAY,
        )
        is None
    )


def test_require_builder_explains_every_candidate(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "notification")
    with pytest.raises(PolicyError) as info:
        require_builder(choice, ("linux/amd64", "linux/arm64"))
    error = info.value
    assert error.exit_code == ExitCode.POLICY
    assert int(error.exit_code) == 4
    assert error.message.splitlines()[0] == (
        "no builder image qualifies for service 'notification' (go >=1.25.5, linux/amd64, linux/arm64):"
    )
    for image, version in ((TIER1_124, "1.24.6"), (TIER1_125, "1.25.3"), (MIRROR, "1.25.5")):
        line = next(ln for ln in error.message.splitlines() if image in ln)
        assert version in line
    assert "does not name service 'notification'" in error.message
    assert error.hint is not None
    assert "orch exception new --service notification --stage builder" in error.hint


def test_require_builder_passes_a_chosen_builder(tmp_path: Path) -> None:
    choice = choose(two_services(tmp_path), "workflowexecution")
    assert require_builder(choice, ("linux/amd64",)) is choice
