"""Builder selection: one builder per service that serves all its platforms, with the reasons every
other candidate was rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.config import Policy
from orchestrator.errors import PolicyError
from orchestrator.models import ResolvedImage, Service
from orchestrator.policy.refs import normalise
from orchestrator.policy.rules import (
    exception_for,
    matching_advisories,
    satisfies,
    standing,
)


@dataclass(frozen=True)
class Rejection:
    image: str
    tier: str
    version: str | None
    reasons: tuple[str, ...]

    def describe(self) -> str:
        version = self.version or "unknown version"
        return f"{self.image} [{self.tier}, {version}]: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class BuilderChoice:
    service: str
    toolchain: str
    requirement: str
    image: str | None = None
    tier: int | None = None
    tier_name: str | None = None
    version: str | None = None
    digest: str | None = None
    exception: str | None = None
    resolved: ResolvedImage | None = None
    rejected: tuple[Rejection, ...] = ()
    warnings: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = field(default=())

    @property
    def chosen(self) -> bool:
        return self.image is not None


def choose_builder(
    policy: Policy,
    *,
    service: str,
    spec: Service,
    platforms: Sequence[str],
    facts: Mapping[str, ResolvedImage],
    today: dt.date,
) -> BuilderChoice | None:
    """The highest-tier candidate that satisfies the service's toolchain requirement, has no blocking
    advisory for the platforms built, whose index covers them, and (for a tier that requires one) an
    approved, unexpired exception naming this service. None when the service declares no toolchain.

    `facts` maps a candidate's normalised policy name to what resolution learned; a candidate not in
    it is reported as unresolved (the caller decides whether that is an error).
    """
    if spec.toolchain is None:
        return None
    toolchain = spec.toolchain.name
    requirement = spec.toolchain.version
    candidates = policy.spec.builders.get(toolchain, ())
    ordered = sorted(
        enumerate(candidates),
        key=lambda item: (standing(policy.spec, item[1].image).tier or 10**6, item[0]),
    )
    rejected: list[Rejection] = []
    unresolved: list[str] = []
    for _, candidate in ordered:
        place = standing(policy.spec, candidate.image)
        fact = facts.get(normalise(candidate.image))
        reasons: list[str] = []
        warnings: list[str] = []
        exception_id = None
        if place.kind != "tier":
            reasons.append(place.describe())
        if fact is None:
            unresolved.append(candidate.image)
            reasons.append("not resolved yet (run `orch lock`)")
        else:
            if fact.probe_error:
                reasons.append(f"toolchain version could not be probed: {fact.probe_error}")
            elif not satisfies(fact.toolchain_version, requirement):
                reasons.append(f"{toolchain} {fact.toolchain_version} does not satisfy {requirement}")
            for platform in platforms:
                if platform not in fact.platforms:
                    reasons.append(f"{platform}: the image index has no {platform} manifest")
            for advisory in matching_advisories(
                policy.spec.advisories,
                toolchain=toolchain,
                version=fact.toolchain_version,
                platforms=platforms,
            ):
                scope = advisory.applies_to.goarch or "all platforms"
                if advisory.blocking:
                    reasons.append(f"advisory {advisory.id} ({scope}): {advisory.summary}")
                else:
                    warnings.append(
                        f"{candidate.image} ({toolchain} {fact.toolchain_version}): advisory "
                        f"{advisory.id} when {advisory.applies_to.when} ({scope}): {advisory.summary}"
                    )
        if place.kind == "tier" and place.requires_exception and not reasons:
            verdict = exception_for(policy, service=service, stage="builder", image=candidate.image, today=today)
            if verdict.usable and verdict.exception is not None:
                exception_id = verdict.exception.id
                warnings.extend(verdict.warnings)
            else:
                reasons.append(f"{place.describe()}: {verdict.reason}")
        if reasons:
            rejected.append(
                Rejection(
                    image=candidate.image,
                    tier=place.describe(),
                    version=fact.toolchain_version if fact else None,
                    reasons=tuple(reasons),
                )
            )
            continue
        assert fact is not None
        return BuilderChoice(
            service=service,
            toolchain=toolchain,
            requirement=requirement,
            image=candidate.image,
            tier=place.tier,
            tier_name=place.tier_name,
            version=fact.toolchain_version,
            digest=fact.digest,
            exception=exception_id,
            resolved=fact,
            rejected=tuple(rejected),
            warnings=tuple(warnings),
            unresolved=tuple(unresolved),
        )
    return BuilderChoice(
        service=service,
        toolchain=toolchain,
        requirement=requirement,
        rejected=tuple(rejected),
        unresolved=tuple(unresolved),
    )


def require_builder(choice: BuilderChoice, platforms: Sequence[str]) -> BuilderChoice:
    """Raise the policy error that says everything when no candidate qualified."""
    if choice.chosen:
        return choice
    lines = [
        f"no builder image qualifies for service {choice.service!r} "
        f"({choice.toolchain} {choice.requirement}, {', '.join(platforms)}):"
    ]
    if not choice.rejected:
        lines.append(f"  the policy lists no candidates for toolchain {choice.toolchain!r}")
    lines.extend(f"  - {r.describe()}" for r in choice.rejected)
    raise PolicyError(
        "\n".join(lines),
        hint=(
            f"if a non-tier-1 image is really needed, draft an exception: "
            f"orch exception new --service {choice.service} --stage builder"
        ),
    )
