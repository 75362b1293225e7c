"""`orch policy audit`: every exception record held against today, the project and what resolution
learned.

Exception #001 was approved for one service and used by two, and nobody retired it when a Red Hat
image carried the fixed Go. The audit makes both visible on every run: expired, past review,
expiring soon, unused, used beyond the services it names, and no longer needed (its `revert_when`
holds: some image of a tier at or above the one named now carries a toolchain that satisfies it, the
seed's "Phase 3").

Pure: works on the loaded policy, the parsed Dockerfiles, the builder choices and the resolved
facts. It reads the record files only to point at the line of the key an item is about.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.config import LoadedException, Policy, Project
from orchestrator.dockerfile import Dockerfile
from orchestrator.models import ExceptionRecord, ResolvedImage
from orchestrator.policy import sarif
from orchestrator.policy.lint import ORCH_ARGS, HasDockerfile, relative_path
from orchestrator.policy.refs import BadReference, normalise, parse
from orchestrator.policy.rules import EXPIRY_WARNING_DAYS, matching_advisories, satisfies, standing
from orchestrator.policy.selection import BuilderChoice, choose_builder

AuditKind = Literal[
    "expired",
    "past-review",
    "expiring-soon",
    "unused",
    "used-beyond-scope",
    "no-longer-needed",
    "retired",
    "ok",
]
AuditSeverity = Literal["error", "warning", "info"]

RULES: Mapping[AuditKind, sarif.Rule] = {
    "expired": sarif.Rule(
        "ORCH201",
        "exception-expired",
        "An approved exception is past its expiry date",
        "retire it (`orch exception retire ID`) or renew it through a reviewed change",
    ),
    "past-review": sarif.Rule(
        "ORCH202",
        "exception-past-review",
        "An exception is past its review date",
        "review it: retire it, or move review_by through a reviewed change",
        level="warning",
    ),
    "expiring-soon": sarif.Rule(
        "ORCH203",
        "exception-expiring-soon",
        f"An exception expires within {EXPIRY_WARNING_DAYS} days",
        "decide now: retire it, or renew it through a reviewed change",
        level="warning",
    ),
    "unused": sarif.Rule(
        "ORCH204",
        "exception-unused",
        "An approved exception is used by no builder choice and named by no Dockerfile",
        "retire it (`orch exception retire ID`)",
        level="warning",
    ),
    "used-beyond-scope": sarif.Rule(
        "ORCH205",
        "exception-used-beyond-scope",
        "An exception's image is used (or needed) by a service the exception does not name",
        "name the service through a reviewed change, or draft its own exception "
        "(`orch exception new --service S --stage builder`)",
    ),
    "no-longer-needed": sarif.Rule(
        "ORCH206",
        "exception-no-longer-needed",
        "An exception's revert condition holds: an image of the named tier now satisfies it",
        "retire it (`orch exception retire ID`)",
        level="warning",
    ),
    "retired": sarif.Rule(
        "ORCH207",
        "exception-retired",
        "A retired exception (kept for the record)",
        "nothing to do",
        level="note",
    ),
    "ok": sarif.Rule(
        "ORCH208",
        "exception-ok",
        "An exception in force, in scope and in use",
        "nothing to do",
        level="note",
    ),
}


@dataclass(frozen=True)
class AuditItem:
    exception: str
    kind: AuditKind
    severity: AuditSeverity
    message: str
    file: str
    line: int | None = None  # the line of the record key the item is about, when known

    @property
    def rule(self) -> str:
        return RULES[self.kind].id


def audit(
    policy: Policy,
    project: Project,
    parsed: Mapping[str, HasDockerfile],
    *,
    facts: Mapping[str, ResolvedImage],
    choices: Mapping[str, BuilderChoice | None],
    today: dt.date,
) -> list[AuditItem]:
    """One or more items per exception record, in record order."""
    literal = {name: _literal_images(p.dockerfile, project) for name, p in parsed.items()}
    items: list[AuditItem] = []
    for loaded in policy.exceptions:
        items.extend(
            _audit_record(
                loaded,
                policy=policy,
                project=project,
                literal=literal,
                facts=facts,
                choices=choices,
                today=today,
            )
        )
    return items


def audit_errors(items: Iterable[AuditItem]) -> list[AuditItem]:
    return [i for i in items if i.severity == "error"]


# --- one record ---------------------------------------------------------------------------------


def _literal_images(dockerfile: Dockerfile, project: Project) -> list[str]:
    """External images a Dockerfile names itself (not through orch's args, not another service)."""
    found: list[str] = []
    for ref in dockerfile.image_refs():
        if ref.resolved is None or any(arg in ORCH_ARGS for arg in ref.via_args):
            continue
        if ref.resolved in project.services or ref.resolved in found:
            continue
        found.append(ref.resolved)
    return found


def _names_image(written: str, image: str) -> bool:
    """Does a Dockerfile reference name `image` (same repository and tag; a digest may be added)?"""
    try:
        a, b = parse(written), parse(image)
    except BadReference:
        return written == image
    return a.name == b.name and (a.tag or "latest") == (b.tag or "latest")


def _key_line(path: Path, key: str) -> int | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    prefix = f"{key}:"
    return next((n for n, text in enumerate(lines, start=1) if text.startswith(prefix)), None)


def _audit_record(
    loaded: LoadedException,
    *,
    policy: Policy,
    project: Project,
    literal: Mapping[str, Sequence[str]],
    facts: Mapping[str, ResolvedImage],
    choices: Mapping[str, BuilderChoice | None],
    today: dt.date,
) -> list[AuditItem]:
    record = loaded.record
    file = relative_path(loaded.file, project.root)

    def item(kind: AuditKind, severity: AuditSeverity, message: str, key: str = "id") -> AuditItem:
        return AuditItem(record.id, kind, severity, message, file, _key_line(loaded.file, key))

    if record.status == "retired":
        when = f" on {record.retired_on}" if record.retired_on else ""
        return [item("retired", "info", f"retired{when}", "status")]
    if record.status != "approved":
        what = (
            f"requested, not approved: it allows nothing until `orch exception approve {record.id} --by NAME`"
            if record.status == "requested"
            else "rejected: it allows nothing"
        )
        return [item("ok", "info", what, "status")]

    items: list[AuditItem] = []
    expired = record.expires < today
    if expired:
        days = (today - record.expires).days
        items.append(
            item(
                "expired",
                "error",
                f"expired on {record.expires} ({days} day{'s' if days != 1 else ''} ago): "
                f"it allows nothing; retire it with `orch exception retire {record.id}` "
                "or renew it through a reviewed change",
                "expires",
            )
        )
    else:
        days = (record.expires - today).days
        if days <= EXPIRY_WARNING_DAYS:
            items.append(
                item(
                    "expiring-soon",
                    "warning",
                    f"expires in {days} day{'s' if days != 1 else ''} ({record.expires})",
                    "expires",
                )
            )
    if record.review_by and record.review_by < today:
        items.append(
            item(
                "past-review",
                "warning",
                f"past its review date {record.review_by}: review it, then retire it or move review_by",
                "review_by",
            )
        )

    chosen_by = sorted(name for name, c in choices.items() if c is not None and c.exception == record.id)
    named_by = sorted(
        name for name, images in literal.items() if any(_names_image(written, record.image) for written in images)
    )
    beyond = [n for n in named_by if n not in record.services]
    for name in beyond:
        items.append(
            item(
                "used-beyond-scope",
                "error",
                f"the Dockerfile of service {name!r} names {record.image}, but {record.id} "
                f"names only {', '.join(record.services)}",
                "services",
            )
        )
    for name in _needed_beyond_scope(record, policy=policy, project=project, facts=facts, choices=choices, today=today):
        if name in beyond:
            continue
        items.append(
            item(
                "used-beyond-scope",
                "error",
                f"service {name!r} has no qualifying builder without {record.id} "
                f"({record.image}), but {record.id} names only {', '.join(record.services)}: "
                "an exception applied to services it does not name",
                "services",
            )
        )
    if not expired and not chosen_by and not named_by:
        items.append(
            item(
                "unused",
                "warning",
                f"no service's builder choice uses it and no Dockerfile names {record.image}: "
                f"retire it with `orch exception retire {record.id}`",
                "services",
            )
        )
    replacement = _revert_candidate(record, policy=policy, project=project, facts=facts)
    if replacement is not None:
        items.append(item("no-longer-needed", "warning", replacement, "revert_when"))
    if not items:
        users = ", ".join(chosen_by or named_by)
        items.append(item("ok", "info", f"in force until {record.expires}, used by {users}", "status"))
    return items


def _needed_beyond_scope(
    record: ExceptionRecord,
    *,
    policy: Policy,
    project: Project,
    facts: Mapping[str, ResolvedImage],
    choices: Mapping[str, BuilderChoice | None],
    today: dt.date,
) -> list[str]:
    """Services the record does not name whose builder choice failed and would pick the record's
    image if it named them: the seed's exception, applied to two services while naming one."""
    if record.stage != "builder":
        return []
    found: list[str] = []
    for name, choice in choices.items():
        if choice is None or choice.chosen or name in record.services:
            continue
        spec = project.services.get(name)
        if spec is None:
            continue
        widened = record.model_copy(update={"services": (*record.services, name)})
        exceptions = tuple(
            dataclasses.replace(e, record=widened) if e.record.id == record.id else e for e in policy.exceptions
        )
        hypothetical = dataclasses.replace(policy, exceptions=exceptions)
        again = choose_builder(
            hypothetical,
            service=name,
            spec=spec,
            platforms=project.platforms_of(name),
            facts=facts,
            today=today,
        )
        if again is not None and again.chosen and again.exception == record.id:
            found.append(name)
    return found


def _revert_candidate(
    record: ExceptionRecord,
    *,
    policy: Policy,
    project: Project,
    facts: Mapping[str, ResolvedImage],
) -> str | None:
    """The message when `revert_when` holds: an image of a tier <= the named one, needing no
    exception, whose probed toolchain satisfies the version, covers the platforms of the services
    the record names and has no blocking advisory for them."""
    revert = record.revert_when
    if revert is None:
        return None
    named = [s for s in record.services if s in project.services]
    platforms = sorted({p for s in named for p in project.platforms_of(s)}) or list(project.spec.platforms)
    for candidate in policy.spec.builders.get(revert.toolchain, ()):
        place = standing(policy.spec, candidate.image)
        if place.kind != "tier" or place.tier is None or place.tier > revert.tier:
            continue
        if place.requires_exception:
            continue
        try:
            fact = facts.get(normalise(candidate.image))
        except BadReference:
            continue
        if fact is None or fact.probe_error or not satisfies(fact.toolchain_version, revert.version):
            continue
        if any(p not in fact.platforms for p in platforms):
            continue
        advisories = matching_advisories(
            policy.spec.advisories,
            toolchain=revert.toolchain,
            version=fact.toolchain_version,
            platforms=platforms,
        )
        if any(a.blocking for a in advisories):
            continue
        return (
            f"no longer needed: {candidate.image} (tier {place.tier}) now carries "
            f"{revert.toolchain} {fact.toolchain_version} which satisfies {revert.version}: "
            f"retire it with `orch exception retire {record.id}`"
        )
    return None


# --- output -------------------------------------------------------------------------------------


def to_text(items: Sequence[AuditItem]) -> str:
    lines = []
    for i in items:
        where = f"{i.file}:{i.line}" if i.line else i.file
        lines.append(f"{where}: {i.severity} {i.kind} {i.exception}: {i.message}")
    errors = len(audit_errors(items))
    warnings = sum(1 for i in items if i.severity == "warning")
    lines.append(
        f"{len({i.exception for i in items})} exception record(s): "
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    return "\n".join(lines) + "\n"


def to_json(items: Sequence[AuditItem]) -> str:
    data = {
        "items": [{**dataclasses.asdict(i), "rule": i.rule} for i in items],
        "errors": len(audit_errors(items)),
        "warnings": sum(1 for i in items if i.severity == "warning"),
    }
    return json.dumps(data, indent=2) + "\n"


def to_sarif(items: Sequence[AuditItem], *, tool_version: str) -> str:
    """SARIF for the items that say something (`ok` items are left out)."""
    results = [
        sarif.Result(i.rule, sarif.sarif_level(i.severity), f"{i.exception}: {i.message}", i.file, i.line)
        for i in items
        if i.kind != "ok"
    ]
    return sarif.to_sarif(list(RULES.values()), results, tool_version=tool_version)
