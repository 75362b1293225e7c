"""Exception records as data: drafting a request from what orch found, and moving a record through
its life (requested → approved → retired, or requested → rejected).

`draft` writes what Exception #001 wrote by hand, but from evidence: every candidate orch
considered with its probed version, index digest and the reason it was rejected; the proposed image
is the first candidate rejected only for needing an exception; the revert condition is data that
`orch policy audit` checks on every run. `set_status` edits the record's status keys in place,
keeping the rest of the file (key order, comments) as written, and checks the result still loads.

Pure except reading the record file it is given; the caller writes what these functions return.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from orchestrator.config import LoadedException, Policy, Project, parse_yaml, read_text, validate
from orchestrator.config import suggest as _suggest
from orchestrator.errors import PolicyError, UsageError
from orchestrator.models import ExceptionRecord, ExceptionStatus, ResolvedImage
from orchestrator.policy.refs import BadReference, normalise
from orchestrator.policy.rules import standing, version_of
from orchestrator.policy.selection import BuilderChoice, Rejection

REVIEW_DAYS = 30
EXPIRY_DAYS = 90
_ID = re.compile(r"^EXC-(\d+)$")
_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "requested": frozenset({"approved", "rejected", "retired"}),
    "approved": frozenset({"retired"}),
    "rejected": frozenset(),
    "retired": frozenset(),
}
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@/()-]*$")


# --- status changes -----------------------------------------------------------------------------


def set_status(loaded: LoadedException, status: ExceptionStatus, *, by: str | None, on: dt.date) -> str:
    """The record file's new text with `status` set (approve: approved_by/approved_on; retire:
    retired_on). Raises UsageError for a transition that makes no sense."""
    record = loaded.record
    if status == record.status:
        raise UsageError(f"exception {record.id} is already {status}")
    if status not in _TRANSITIONS[record.status]:
        raise UsageError(
            f"exception {record.id} is {record.status}: it cannot become {status}",
            hint="draft a new exception with `orch exception new --service S --stage builder`",
        )
    updates: dict[str, str] = {"status": status}
    if status == "approved":
        if not by or not by.strip():
            raise UsageError(f"approving {record.id} needs the approver's name", hint="pass --by NAME")
        if record.expires < on:
            raise UsageError(
                f"exception {record.id} expired on {record.expires}, before its approval on {on}",
                hint="move `expires` to a later date first (a reviewed change)",
            )
        updates["approved_by"] = yaml_scalar(by.strip())
        updates["approved_on"] = on.isoformat()
    elif status == "retired":
        updates["retired_on"] = on.isoformat()
    text = read_text(loaded.file, "exception record")
    new = edit_keys(text, updates)
    validate(ExceptionRecord, parse_yaml(new, str(loaded.file)), what="exception record")
    return new


def yaml_scalar(value: str) -> str:
    """A YAML scalar for `value`: plain when it reads back as the same string, else JSON-quoted
    (a JSON string is a valid YAML double-quoted scalar)."""
    if _PLAIN.match(value) and value == value.strip():
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def edit_keys(text: str, updates: Mapping[str, str]) -> str:
    """Set top-level `key: value` lines (values already YAML), keeping a trailing comment; keys that
    are missing are appended in the order given."""
    lines = text.splitlines(keepends=True)
    for key, value in updates.items():
        pattern = re.compile(rf"^{re.escape(key)}\s*:(?P<value>[^#\r\n]*?)(?P<comment>\s+#.*)?(?P<eol>\r?\n)?$")
        for index, line in enumerate(lines):
            m = pattern.match(line)
            if m is None:
                continue
            comment = m.group("comment") or ""
            lines[index] = f"{key}: {value}{comment}{m.group('eol') or chr(10)}"
            if not m.group("value").strip():  # a block value below the key: drop it
                end = index + 1
                while end < len(lines) and (lines[end][:1] in (" ", "\t", "-")):
                    end += 1
                del lines[index + 1 : end]
            break
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(f"{key}: {value}\n")
    return "".join(lines)


# --- drafting -----------------------------------------------------------------------------------


def next_id(policy: Policy) -> str:
    """`EXC-NNN`, one past the highest number a record or a record file uses."""
    numbers = [0]
    for loaded in policy.exceptions:
        for text in (loaded.record.id, loaded.file.stem):
            m = _ID.match(text)
            if m:
                numbers.append(int(m.group(1)))
    folder = policy.directory / "exceptions"
    if folder.is_dir():
        for entry in folder.iterdir():
            m = _ID.match(entry.stem)
            if m:
                numbers.append(int(m.group(1)))
    return f"EXC-{max(numbers) + 1:03d}"


def record_path(policy: Policy, exc_id: str) -> Path:
    return policy.directory / "exceptions" / f"{exc_id}.yaml"


def draft(
    *,
    service: str,
    stage: str,
    project: Project,
    policy: Policy,
    choice: BuilderChoice | None,
    facts: Mapping[str, ResolvedImage],
    today: dt.date,
    requested_by: str,
) -> tuple[str, str, str]:
    """(id, record YAML with status requested, Markdown request) for `service`'s `stage`."""
    if service not in project.services:
        near = _suggest(service, list(project.services))
        raise UsageError(
            f"unknown service {service!r}",
            hint=f"did you mean {near!r}?" if near else f"services: {', '.join(project.services)}",
        )
    if stage != "builder":
        raise UsageError(
            f"orch drafts builder exceptions only, not {stage!r}",
            hint="write a runtime exception record by hand (stage: runtime) and have it reviewed",
        )
    if choice is None:
        raise UsageError(
            f"service {service!r} declares no toolchain: orch chooses no builder for it",
            hint="add `toolchain: {name: go, version: '>=1.25.4'}` to the service in services.yaml",
        )
    if choice.chosen:
        how = f" under exception {choice.exception}" if choice.exception else ""
        raise UsageError(
            f"service {service!r} needs no new exception: the policy chooses {choice.image} "
            f"(tier {choice.tier}, {choice.toolchain} {choice.version}){how}"
        )
    if choice.unresolved:
        raise UsageError(
            f"not every candidate is resolved ({', '.join(choice.unresolved)}): the request must "
            "show what each one carries",
            hint="run `orch lock` first",
        )
    proposed = next((r for r in choice.rejected if _only_exception(policy, r)), None)
    if proposed is None:
        lines = "\n".join(f"  - {r.describe()}" for r in choice.rejected) or "  (none)"
        raise PolicyError(
            f"no candidate for {choice.toolchain} {choice.requirement} would qualify even with an exception:\n{lines}",
            hint=f"add a candidate that carries {choice.toolchain} {choice.requirement} to the "
            f"policy's builders.{choice.toolchain} (in a tier that requires an exception)",
        )
    instead_of = _best_tier_one(policy, choice.rejected)
    exc_id = next_id(policy)
    record = _record_yaml(
        exc_id,
        service=service,
        stage=stage,
        image=proposed.image,
        instead_of=instead_of.image if instead_of else None,
        requested_by=requested_by,
        today=today,
        choice=choice,
    )
    request = _request_markdown(
        exc_id,
        service=service,
        stage=stage,
        project=project,
        policy=policy,
        choice=choice,
        proposed=proposed,
        instead_of=instead_of,
        facts=facts,
        today=today,
        requested_by=requested_by,
    )
    return exc_id, record, request


def _only_exception(policy: Policy, rejection: Rejection) -> bool:
    """Rejected only because its tier requires an exception (selection adds that reason only to a
    candidate that passed everything else)."""
    place = standing(policy.spec, rejection.image)
    return (
        place.kind == "tier"
        and place.requires_exception
        and len(rejection.reasons) == 1
        and rejection.reasons[0].startswith(f"{place.describe()}:")
    )


def _best_tier_one(policy: Policy, rejected: Sequence[Rejection]) -> Rejection | None:
    tier_one = [r for r in rejected if standing(policy.spec, r.image).tier == 1]
    if not tier_one:
        return None
    best = tier_one[0]
    for r in tier_one[1:]:
        mine, theirs = version_of(r.version), version_of(best.version)
        if mine is not None and (theirs is None or mine > theirs):
            best = r
    return best


def _record_yaml(
    exc_id: str,
    *,
    service: str,
    stage: str,
    image: str,
    instead_of: str | None,
    requested_by: str,
    today: dt.date,
    choice: BuilderChoice,
) -> str:
    q = json.dumps
    review_by = today + dt.timedelta(days=REVIEW_DAYS)
    expires = today + dt.timedelta(days=EXPIRY_DAYS)
    reason = f"TODO: why no tier-1 {choice.toolchain} image will do (see {exc_id}.md)"
    return "\n".join(
        [
            f"# {exc_id}: drafted by orch on {today.isoformat()} (the request is {exc_id}.md).",
            "# Fill in `reason`, have it reviewed, then:",
            f"#   orch exception approve {exc_id} --by NAME",
            f"id: {exc_id}",
            "status: requested",
            "services:",
            f"  - {q(service)}",
            f"stage: {stage}",
            f"image: {q(image)}",
            f"instead_of: {q(instead_of) if instead_of else 'null'}",
            f"reason: {q(reason)}",
            f"requested_by: {yaml_scalar(requested_by)}",
            "approved_by: null",
            "approved_on: null",
            f"review_by: {review_by.isoformat()}",
            f"expires: {expires.isoformat()}",
            "retired_on: null",
            "# orch policy audit reports the exception as no longer needed once this holds:",
            "revert_when:",
            f"  toolchain: {q(choice.toolchain)}",
            f"  version: {q(choice.requirement)}",
            "  tier: 1",
            "",
        ]
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _request_markdown(
    exc_id: str,
    *,
    service: str,
    stage: str,
    project: Project,
    policy: Policy,
    choice: BuilderChoice,
    proposed: Rejection,
    instead_of: Rejection | None,
    facts: Mapping[str, ResolvedImage],
    today: dt.date,
    requested_by: str,
) -> str:
    platforms = project.platforms_of(service)
    review_by = today + dt.timedelta(days=REVIEW_DAYS)
    expires = today + dt.timedelta(days=EXPIRY_DAYS)

    def fact(image: str) -> ResolvedImage | None:
        try:
            return facts.get(normalise(image))
        except BadReference:
            return None

    rows = []
    for r in choice.rejected:
        f = fact(r.image)
        why = "needs an exception: proposed below" if r is proposed else "; ".join(r.reasons)
        rows.append(
            f"| `{r.image}` | {_cell(r.tier)} | {r.version or 'unknown'} | "
            f"{f'`{f.digest}`' if f else 'unresolved'} | {_cell(why)} |"
        )
    chosen_fact = fact(proposed.image)
    manifests = (
        "\n".join(f"  - {p}: `{chosen_fact.platforms[p]}`" for p in platforms if p in chosen_fact.platforms)
        if chosen_fact
        else "  - unresolved"
    )
    place = standing(policy.spec, proposed.image)
    instead = (
        f"`{instead_of.image}` ({choice.toolchain} {instead_of.version or 'unknown'})"
        if instead_of
        else "no tier-1 candidate"
    )
    lines = [
        f"# Exception request {exc_id}: `{proposed.image}` for {service} ({stage})",
        "",
        "**Status**: requested  ",
        f"**Date**: {today.isoformat()}  ",
        f"**Requested by**: {requested_by}  ",
        f"**Service**: {service}  ",
        f"**Stage**: {stage}  ",
        f"**Record**: `{exc_id}.yaml`",
        "",
        "## 1. Technology Requirement",
        "",
        f"- **Toolchain**: {choice.toolchain}",
        f"- **Version required**: `{choice.requirement}`",
        f"- **Platforms**: {', '.join(platforms)}",
        "",
        "## 2. Catalog Search Results",
        "",
        f"Every `{choice.toolchain}` builder candidate of the policy, as orch resolved and probed it:",
        "",
        "| Image | Tier | Probed version | Index digest | Why rejected |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"**Result**: no candidate that needs no exception satisfies "
        f"{choice.toolchain} `{choice.requirement}` on {', '.join(platforms)}.",
        "",
        "## 3. Proposed Alternative Image",
        "",
        f"- **Image**: `{proposed.image}`",
        f"- **Tier**: {place.describe()}",
        f"- **{choice.toolchain} version**: {proposed.version or 'unknown'}",
        f"- **Index digest**: {f'`{chosen_fact.digest}`' if chosen_fact else 'unresolved'}",
        f"- **Pulled from**: `{chosen_fact.pull if chosen_fact else proposed.image}`",
        "- **Per-platform manifests**:",
        manifests,
        f"- **Instead of**: {instead}",
        "",
        "## 4. Security Assessment",
        "",
        f"- **Scan results**: TODO: scan `{proposed.image}` at the digest above and record the "
        "CRITICAL / HIGH / MEDIUM counts here.",
        f"- **Exposure**: {stage} stage only; the runtime stays `{policy.spec.runtime}`.",
        "",
        "## 5. Justification",
        "",
        "TODO: why none of the candidates in section 2 will do, with evidence (a reproducer, an "
        "upstream issue). Check first that the problem is not the build itself (for example a "
        "hard-coded GOARCH: `orch policy check`).",
        "",
        "## 6. Mitigation Plan",
        "",
        f"- **Review by**: {review_by.isoformat()}; **expires**: {expires.isoformat()}.",
        f"- **Revert condition** (checked by `orch policy audit` on every run): a tier-1 "
        f"`{choice.toolchain}` image carries a version satisfying `{choice.requirement}`. "
        f"Then the audit reports {exc_id} as no longer needed; retire it with "
        f"`orch exception retire {exc_id}`.",
        f"- **Scope**: only service `{service}`; orch refuses it for any other service.",
        "- TODO: anything else (mirror updates, scanning in CI).",
        "",
        "## 7. Approval",
        "",
        "- **approved_by**: _pending_",
        "- **approved_on**: _pending_",
        f"- **review_by**: {review_by.isoformat()}",
        f"- **expires**: {expires.isoformat()}",
        "",
        f"To approve, run `orch exception approve {exc_id} --by NAME`.",
        "",
    ]
    return "\n".join(lines)
