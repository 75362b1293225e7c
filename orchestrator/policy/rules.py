"""The building blocks of the policy: where an image stands (tier, prohibited, unlisted), whether an
exception is in force for a service, and which advisories match a toolchain version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from orchestrator.config import LoadedException, Policy
from orchestrator.models import Advisory, ExceptionRecord, PolicyFile, platform_arch
from orchestrator.policy.refs import BadReference, matches, parse

EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class Standing:
    """Where an image reference stands in the policy."""

    kind: Literal["tier", "prohibited", "unlisted", "invalid"]
    tier: int | None = None  # 1-based
    tier_name: str | None = None
    requires_exception: bool = False
    pattern: str | None = None

    def describe(self) -> str:
        if self.kind == "tier":
            extra = ", requires an exception" if self.requires_exception else ""
            return f"tier {self.tier} ({self.tier_name}{extra})"
        if self.kind == "prohibited":
            return f"prohibited registry ({self.pattern})"
        if self.kind == "invalid":
            return "not a valid image reference"
        return "in no approved tier"


def standing(policy: PolicyFile, ref: str) -> Standing:
    """A tier match wins over `prohibited` (a mirror path below a prohibited host can be approved)."""
    try:
        image = parse(ref)
    except BadReference:
        return Standing("invalid")
    for index, tier in enumerate(policy.tiers, start=1):
        for pattern in tier.registries:
            if matches(pattern, image):
                return Standing("tier", index, tier.name, tier.requires_exception, pattern=pattern)
    for pattern in policy.prohibited:
        if matches(pattern, image):
            return Standing("prohibited", pattern=pattern)
    return Standing("unlisted")


def same_image(a: str, b: str) -> bool:
    try:
        return str(parse(a)) == str(parse(b))
    except BadReference:
        return a == b


@dataclass(frozen=True)
class ExceptionVerdict:
    exception: ExceptionRecord | None
    usable: bool
    reason: str
    warnings: tuple[str, ...] = ()


def exception_for(policy: Policy, *, service: str, stage: str, image: str, today: dt.date) -> ExceptionVerdict:
    """Is there an exception in force that lets `service` use `image` in `stage`?

    Prefers a usable one; otherwise explains the closest miss (wrong scope, expired, not approved).
    """
    candidates = [e.record for e in policy.exceptions if e.record.stage == stage and same_image(e.record.image, image)]
    if not candidates:
        return ExceptionVerdict(None, False, f"no exception record covers {image}")
    misses: list[ExceptionVerdict] = []
    for record in candidates:
        verdict = _judge(record, service=service, today=today)
        if verdict.usable:
            return verdict
        misses.append(verdict)
    return misses[0]


def _judge(record: ExceptionRecord, *, service: str, today: dt.date) -> ExceptionVerdict:
    if record.status != "approved":
        return ExceptionVerdict(record, False, f"exception {record.id} is {record.status}, not approved")
    if record.expires < today:
        return ExceptionVerdict(record, False, f"exception {record.id} expired on {record.expires}")
    if service not in record.services:
        return ExceptionVerdict(
            record,
            False,
            f"exception {record.id} does not name service {service!r} (it names: {', '.join(record.services)})",
        )
    return ExceptionVerdict(record, True, f"exception {record.id}", exception_warnings(record, today))


def exception_warnings(record: ExceptionRecord, today: dt.date) -> tuple[str, ...]:
    warnings: list[str] = []
    if record.review_by and record.review_by < today:
        warnings.append(
            f"exception {record.id} is past its review date {record.review_by}: "
            "review it, then retire it or move review_by"
        )
    days = (record.expires - today).days
    if 0 <= days <= EXPIRY_WARNING_DAYS:
        warnings.append(f"exception {record.id} expires in {days} days ({record.expires})")
    return tuple(warnings)


def version_of(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version(text.removeprefix("go"))
    except InvalidVersion:
        return None


def satisfies(version: str | None, spec: str) -> bool:
    parsed = version_of(version)
    return parsed is not None and SpecifierSet(spec).contains(parsed, prereleases=True)


def matching_advisories(
    advisories: Iterable[Advisory], *, toolchain: str, version: str | None, platforms: Sequence[str]
) -> list[Advisory]:
    """Advisories whose version range holds `version` and whose goarch (if any) is built."""
    found = []
    arches = {platform_arch(p) for p in platforms}
    for advisory in advisories:
        if advisory.toolchain != toolchain or not satisfies(version, advisory.versions):
            continue
        if advisory.applies_to.goarch and advisory.applies_to.goarch not in arches:
            continue
        found.append(advisory)
    return found


def active_exceptions(policy: Policy) -> list[LoadedException]:
    return [e for e in policy.exceptions if e.record.status == "approved"]
