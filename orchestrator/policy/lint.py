"""`orch policy check`: every Dockerfile held against the registry policy, before anything is built.

Each external image a Dockerfile names (FROM, also through ARG defaults and build args; COPY --from;
RUN --mount=...,from=) is placed with `standing()`; a tier that requires an exception needs one in
force for this service, stage and image. Images reached through orch's own build args
(BUILDER_IMAGE, RUNTIME_IMAGE) are orch's choice and not checked here; an image that is another
service of the project is an in-graph dependency, not an external image. The final stage must be the
policy runtime (directly, through ${RUNTIME_IMAGE}, or through another service whose own final stage
is). A hard-coded target architecture is the bug behind Exception #001 (an "arm64" image holding an
amd64 binary) and is flagged wherever it is written.

Pure: works on parsed Dockerfiles and the loaded policy; never talks to an engine.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from orchestrator.config import Policy, Project
from orchestrator.dockerfile import Dockerfile, ImageRef, Instruction, Stage
from orchestrator.errors import DockerfileError
from orchestrator.models import KNOWN_ARCHES, ExceptionRecord, Service
from orchestrator.policy import sarif
from orchestrator.policy.refs import BadReference, ImageName, parse
from orchestrator.policy.rules import exception_for, standing
from orchestrator.policy.selection import BuilderChoice

# The build args orch sets itself (the same names as plan.ORCH_ARGS; policy does not import plan).
ORCH_ARGS = ("BUILDER_IMAGE", "RUNTIME_IMAGE")

Severity = Literal["error", "warning"]

FIX_BUILDER = "pass the builder through ARG BUILDER_IMAGE: FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE}"
FIX_RUNTIME = "base the final stage on the policy runtime: ARG RUNTIME_IMAGE, then FROM ${RUNTIME_IMAGE}"
FIX_ARCH = "compile with GOARCH=$TARGETARCH (declare ARG TARGETARCH) in a stage FROM --platform=$BUILDPLATFORM"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    severity: Severity
    service: str
    message: str
    fix: str


RULES: Mapping[str, sarif.Rule] = {
    rule.id: rule
    for rule in (
        sarif.Rule(
            "ORCH100",
            "invalid-image-reference",
            "An image reference is not a valid image name",
            "write registry/repository[:tag][@sha256:digest] in lower case",
        ),
        sarif.Rule(
            "ORCH101",
            "prohibited-registry",
            "An image comes from a registry the policy prohibits",
            FIX_BUILDER + "; or use an image from an approved tier",
        ),
        sarif.Rule(
            "ORCH102",
            "unlisted-registry",
            "An image comes from a registry in no approved tier",
            FIX_BUILDER + "; or use an image from an approved tier",
        ),
        sarif.Rule(
            "ORCH103",
            "exception-required",
            "An image in a tier that requires an exception has no exception in force for this service, stage and image",
            "draft one with `orch exception new --service S --stage STAGE` and have it approved, or use a tier-1 image",
        ),
        sarif.Rule(
            "ORCH104",
            "unpinned-image",
            "A builder image is unpinned (`:latest` or no tag, and no digest)",
            FIX_BUILDER + " (orch pins it by digest), or pin a version tag",
            level="warning",
        ),
        sarif.Rule(
            "ORCH105",
            "unresolved-image-reference",
            "An image reference cannot be known statically, so it cannot be checked",
            "give the ARG a default or a build arg in services.yaml, or use ARG BUILDER_IMAGE / ARG RUNTIME_IMAGE",
            level="warning",
        ),
        sarif.Rule(
            "ORCH110",
            "final-stage-not-runtime",
            "The final stage is not based on the policy runtime image",
            FIX_RUNTIME,
        ),
        sarif.Rule(
            "ORCH120",
            "hard-coded-architecture",
            "The target architecture is hard-coded (GOARCH=amd64, ${GOARCH:-amd64}, ARG GOARCH=amd64)",
            FIX_ARCH,
            level="warning",
        ),
        sarif.Rule(
            "ORCH121",
            "final-stage-platform",
            "The final stage's FROM names a literal --platform",
            "drop --platform from the final stage: orch builds it for every platform of the service",
            level="warning",
        ),
        sarif.Rule(
            "ORCH130",
            "builder-not-chosen",
            "The Dockerfile names a literal builder other than the one the policy chooses",
            FIX_BUILDER,
        ),
    )
}


class HasDockerfile(Protocol):
    """What lint needs of a parsed service (plan.ParsedService fits)."""

    @property
    def dockerfile(self) -> Dockerfile: ...


# --------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class _Context:
    name: str
    service: Service
    dockerfile: Dockerfile
    policy: Policy
    services: Mapping[str, Service]
    dockerfiles: Mapping[str, Dockerfile]
    today: dt.date
    chosen_builder: str | None
    file: str

    def finding(self, line: int, rule: str, message: str, fix: str) -> Finding:
        severity: Severity = "error" if RULES[rule].level == "error" else "warning"
        return Finding(self.file, line, rule, severity, self.name, message, fix)


def lint_service(
    name: str,
    service: Service,
    dockerfile: Dockerfile,
    *,
    policy: Policy,
    services: Mapping[str, Service],
    dockerfiles: Mapping[str, Dockerfile],
    today: dt.date,
    chosen_builder: str | None = None,
    file: str | None = None,
) -> list[Finding]:
    """Every finding for one service's Dockerfile (the stages its target needs), sorted by line.

    `file` is how findings name the Dockerfile (default: its path as parsed).
    """
    ctx = _Context(
        name,
        service,
        dockerfile,
        policy,
        services,
        dockerfiles,
        today,
        chosen_builder,
        file if file is not None else dockerfile.path,
    )
    try:
        final = dockerfile.final_stage(service.target)
        needed = dockerfile.needed_stages(service.target)
    except DockerfileError as exc:
        return [ctx.finding(1, "ORCH110", exc.message, exc.hint or FIX_RUNTIME)]
    findings: list[Finding] = []
    for index in needed:
        stage = dockerfile.stages[index]
        for ref in stage.image_refs:
            findings.extend(_check_ref(ctx, ref, stage, final))
    findings.extend(_check_runtime(ctx, final))
    findings.extend(_check_arch(ctx, needed, final))
    return sorted(findings, key=lambda f: (f.line, f.rule))


def lint_project(
    project: Project,
    policy: Policy,
    parsed: Mapping[str, HasDockerfile],
    *,
    today: dt.date,
    choices: Mapping[str, BuilderChoice | None] | None = None,
) -> list[Finding]:
    """Lint every service of the project; files are named relative to the project root."""
    dockerfiles = {name: p.dockerfile for name, p in parsed.items()}
    findings: list[Finding] = []
    for name, service in project.services.items():
        if name not in parsed:
            continue
        choice = (choices or {}).get(name)
        chosen = choice.image if choice is not None and choice.chosen else None
        findings.extend(
            lint_service(
                name,
                service,
                dockerfiles[name],
                policy=policy,
                services=project.services,
                dockerfiles=dockerfiles,
                today=today,
                chosen_builder=chosen,
                file=relative_path(project.paths[name].dockerfile, project.root),
            )
        )
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule, f.service))


def lint_errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def relative_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --- image references --------------------------------------------------------------------------


def _describe(ctx: _Context, ref: ImageRef) -> str:
    """How the reference reads in a message: `FROM ${BASE} is x (hidden behind ARG BASE)`."""
    written = {
        "from": f"FROM {ref.raw}",
        "copy-from": f"COPY --from={ref.raw}",
        "mount-from": f"RUN --mount=from={ref.raw}",
    }[ref.kind]
    if ref.resolved is None:
        return written
    try:
        shown = ref.resolved if ref.resolved in ctx.services else str(parse(ref.resolved))
    except BadReference:
        shown = ref.resolved
    if shown == ref.raw:
        return written
    hidden = ", ".join(_var_kind(ctx.dockerfile, v) for v in ref.via_args)
    text = f"{written} is {shown}"
    if hidden:
        text += f" (hidden behind {hidden})"
    return text


def _var_kind(dockerfile: Dockerfile, name: str) -> str:
    declared_as_arg = name in dockerfile.global_args or any(name in s.args for s in dockerfile.stages)
    text = f"ARG {name}" if declared_as_arg else f"ENV {name}"
    if name in dockerfile.build_args:
        text += " set by services.yaml build_args"
    return text


def _same_image_and_tag(a: ImageName, b: str) -> bool:
    try:
        other = parse(b)
    except BadReference:
        return False
    return a.name == other.name and (a.tag or "latest") == (other.tag or "latest")


def _builder_repositories(policy: Policy) -> set[str]:
    names: set[str] = set()
    for candidates in policy.spec.builders.values():
        for candidate in candidates:
            try:
                names.add(parse(candidate.image).name)
            except BadReference:
                continue
    return names


def _is_builder_stage(ctx: _Context, stage: Stage, image: ImageName) -> bool:
    return (stage.name is not None and "build" in stage.name) or image.name in _builder_repositories(ctx.policy)


def _check_ref(ctx: _Context, ref: ImageRef, stage: Stage, final: Stage) -> list[Finding]:
    if any(arg in ORCH_ARGS for arg in ref.via_args):
        return []  # orch's choice, made by the policy
    where = _describe(ctx, ref)
    if ref.resolved is None:
        unknown = [v for v in ref.via_args if v not in ctx.dockerfile.build_args]
        why = f"{', '.join(unknown)} has no default and no build arg" if unknown else "not static"
        return [
            ctx.finding(
                ref.line,
                "ORCH105",
                f"{where}: the image cannot be known before the build ({why}): not checked",
                RULES["ORCH105"].help,
            )
        ]
    if ref.resolved in ctx.services:
        return []  # another service of the project: an in-graph dependency
    in_final = ref.stage_index == final.index
    stage_kind = "runtime" if in_final else "builder"
    fix = FIX_RUNTIME if in_final and ref.kind == "from" else FIX_BUILDER
    place = standing(ctx.policy.spec, ref.resolved)
    if place.kind == "invalid":
        return [ctx.finding(ref.line, "ORCH100", f"{where}: {place.describe()}", RULES["ORCH100"].help)]
    image = parse(ref.resolved)
    if place.kind == "prohibited":
        return [ctx.finding(ref.line, "ORCH101", f"{where}: {place.describe()}", fix)]
    if place.kind == "unlisted":
        return [ctx.finding(ref.line, "ORCH102", f"{where}: {place.describe()}", fix)]
    findings: list[Finding] = []
    if place.requires_exception:
        verdict = exception_for(ctx.policy, service=ctx.name, stage=stage_kind, image=ref.resolved, today=ctx.today)
        if not verdict.usable:
            findings.append(
                ctx.finding(
                    ref.line,
                    "ORCH103",
                    f"{where}: {place.describe()}: {verdict.reason}",
                    _exception_fix(ctx, verdict.exception, stage_kind, fix),
                )
            )
    is_builder = not in_final and ref.kind == "from" and _is_builder_stage(ctx, stage, image)
    if is_builder and ctx.chosen_builder is not None and not _same_image_and_tag(image, ctx.chosen_builder):
        findings.append(
            ctx.finding(
                ref.line,
                "ORCH130",
                f"{where}: the policy chooses {ctx.chosen_builder} for this service",
                FIX_BUILDER,
            )
        )
    if not findings and not in_final and image.unpinned:
        findings.append(
            ctx.finding(
                ref.line,
                "ORCH104",
                f"{where}: unpinned (no tag or :latest, no digest): it changes under you",
                RULES["ORCH104"].help,
            )
        )
    return findings


def _exception_fix(ctx: _Context, record: ExceptionRecord | None, stage_kind: str, fallback: str) -> str:
    new = f"orch exception new --service {ctx.name} --stage {stage_kind}"
    if record is None:
        return f"draft an exception ({new}) and have it approved, or {fallback}"
    if record.status != "approved":
        return f"have it approved (orch exception approve {record.id} --by NAME), or {fallback}"
    if record.expires < ctx.today:
        return f"{record.id} has expired: renew it with a reviewed change or {fallback}"
    return (
        f"{record.id} is scoped to {', '.join(record.services)}: widen its services "
        f"with a reviewed change or draft one for this service ({new})"
    )


# --- the runtime --------------------------------------------------------------------------------


def _check_runtime(ctx: _Context, final: Stage) -> list[Finding]:
    ok, chain = _runtime_base(ctx, ctx.name, ctx.dockerfile, ctx.service.target, seen=frozenset({ctx.name}))
    if ok:
        return []
    return [
        ctx.finding(
            final.line,
            "ORCH110",
            f"the final stage is not the policy runtime {ctx.policy.spec.runtime}: "
            + ", whose final stage is ".join(chain),
            FIX_RUNTIME,
        )
    ]


def _runtime_base(
    ctx: _Context, service: str, dockerfile: Dockerfile, target: str | None, *, seen: frozenset[str]
) -> tuple[bool, list[str]]:
    """Is the final stage the runtime? Returns (ok, the chain of bases that was followed)."""
    try:
        stage = dockerfile.final_stage(target)
    except DockerfileError as exc:
        return False, [exc.message]
    visited: set[int] = set()
    while stage.base_stage_index is not None and stage.index not in visited:
        visited.add(stage.index)
        stage = dockerfile.stages[stage.base_stage_index]
    if stage.is_scratch:
        return False, ["FROM scratch"]
    base = stage.base_image
    if base is None:
        return False, [f"FROM {stage.base_raw}"]
    if "RUNTIME_IMAGE" in base.via_args:
        return True, []
    described = _describe(ctx, base) if dockerfile is ctx.dockerfile else f"FROM {base.raw}"
    if base.resolved is None:
        return False, [f"{described} (not known before the build)"]
    if base.resolved in ctx.services:
        other = base.resolved
        if other in seen:
            return False, [f"{described} (a cycle)"]
        other_df = ctx.dockerfiles.get(other)
        if other_df is None:
            return False, [f"{described} (its Dockerfile was not parsed)"]
        ok, chain = _runtime_base(ctx, other, other_df, ctx.services[other].target, seen=seen | {other})
        return ok, [described, *chain]
    try:
        runtime = parse(ctx.policy.spec.runtime).name
        if parse(base.resolved).name == runtime:
            return True, []
    except BadReference:
        return False, [f"{described} (not a valid image reference)"]
    verdict = exception_for(ctx.policy, service=service, stage="runtime", image=base.resolved, today=ctx.today)
    if verdict.usable:
        return True, []
    if verdict.exception is not None:
        return False, [f"{described} ({verdict.reason})"]
    return False, [described]


# --- architecture -------------------------------------------------------------------------------

_ARCH_VARS = ("GOARCH", "TARGETARCH")
_ASSIGN = re.compile(r"(?<![\w${])(?P<name>GOARCH|TARGETARCH)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&|)]+)")
_DEFAULT = re.compile(r"^\$\{(?P<var>\w+):?[-=](?P<default>[^}]*)\}$")


def _fixed_arch(value: str) -> tuple[str, bool] | None:
    """(arch, is_default) when `value` fixes an architecture: `amd64` or `${V:-amd64}`."""
    text = value.strip("\"'")
    if text.lower() in KNOWN_ARCHES:
        return text, False
    m = _DEFAULT.match(text)
    if m and m.group("default").strip("\"'").lower() in KNOWN_ARCHES:
        return m.group("default").strip("\"'"), True
    return None


def _arch_finding(ctx: _Context, line: int, name: str, value: str, written: str) -> Finding | None:
    fixed = _fixed_arch(value)
    if fixed is None:
        return None
    arch, is_default = fixed
    how = f"defaults to {arch}" if is_default else f"is hard-coded to {arch}"
    return ctx.finding(
        line,
        "ORCH120",
        f"{name} {how} (`{written}`): every platform's image gets a {arch} binary",
        FIX_ARCH,
    )


def _scan_text(ctx: _Context, text: str, first_line: int) -> list[Finding]:
    found: list[Finding] = []
    for m in _ASSIGN.finditer(text):
        line = first_line + text.count("\n", 0, m.start())
        finding = _arch_finding(ctx, line, m.group("name"), m.group("value"), m.group(0))
        if finding is not None:
            found.append(finding)
    return found


def _scan_instruction(ctx: _Context, ins: Instruction) -> list[Finding]:
    found: list[Finding] = []
    if ins.keyword == "RUN":
        found.extend(_scan_text(ctx, ins.body, ins.line))
        for heredoc in ins.heredocs:
            found.extend(_scan_text(ctx, heredoc.body, heredoc.line))
    elif ins.keyword in ("ENV", "ARG"):
        words = ins.body.split()
        if ins.keyword == "ENV" and len(words) >= 2 and words[0] in _ARCH_VARS and "=" not in words[0]:
            finding = _arch_finding(ctx, ins.line, words[0], words[1], ins.body)
            return [finding] if finding is not None else []
        for word in words:
            name, sep, value = word.partition("=")
            if sep and name in _ARCH_VARS:
                finding = _arch_finding(ctx, ins.line, name, value, word)
                if finding is not None:
                    found.append(finding)
    return found


def _check_arch(ctx: _Context, needed: Sequence[int], final: Stage) -> list[Finding]:
    findings: list[Finding] = []
    for ins in ctx.dockerfile.global_instructions:
        findings.extend(_scan_instruction(ctx, ins))
    for index in needed:
        for ins in ctx.dockerfile.stages[index].instructions[1:]:
            findings.extend(_scan_instruction(ctx, ins))
    stage: Stage | None = final
    visited: set[int] = set()
    while stage is not None and stage.index not in visited:
        visited.add(stage.index)
        if stage.platform is not None and "$" not in stage.platform:
            which = "the final stage" if stage is final else f"stage {stage.name or stage.index}"
            findings.append(
                ctx.finding(
                    stage.line,
                    "ORCH121",
                    f"{which} is FROM --platform={stage.platform}: every platform's image gets "
                    f"{stage.platform} content",
                    RULES["ORCH121"].help,
                )
            )
        base_index = stage.base_stage_index
        stage = ctx.dockerfile.stages[base_index] if base_index is not None else None
    return findings


# --- output -------------------------------------------------------------------------------------


def to_text(findings: Sequence[Finding]) -> str:
    lines = [f"{f.file}:{f.line}: {f.severity} {f.rule} {f.service}: {f.message} (fix: {f.fix})" for f in findings]
    errors = len(lint_errors(findings))
    warnings = len(findings) - errors
    lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    return "\n".join(lines) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def to_json(findings: Sequence[Finding]) -> str:
    errors = len(lint_errors(findings))
    data = {
        "findings": [asdict(f) for f in findings],
        "errors": errors,
        "warnings": len(findings) - errors,
    }
    return json.dumps(data, indent=2) + "\n"


def to_sarif(findings: Sequence[Finding], *, tool_version: str) -> str:
    results = [
        sarif.Result(f.rule, sarif.sarif_level(f.severity), f"{f.service}: {f.message}", f.file, f.line)
        for f in findings
    ]
    return sarif.to_sarif(list(RULES.values()), results, tool_version=tool_version)
