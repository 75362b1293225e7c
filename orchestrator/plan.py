"""graph + policy + lock → a frozen, serialisable BuildPlan. Pure: reads files, never an engine.

Per service: the Dockerfile, its platforms, the chosen builder and the runtime pinned by digest with
why, the exception used, the build args and named contexts that carry those pins into the Dockerfile
without editing it, labels, tags and the input hash that makes builds incremental.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from orchestrator.config import Policy, Project
from orchestrator.dockerfile import Dockerfile, Stage, load_dockerfile
from orchestrator.errors import ConfigError
from orchestrator.graph import Selection
from orchestrator.inputs import context_files, hash_files, read_dockerignore
from orchestrator.lock import Need
from orchestrator.models import Frozen, ResolvedImage
from orchestrator.policy.refs import BadReference, mirror, normalise
from orchestrator.policy.selection import BuilderChoice, choose_builder

ORCH_ARGS = ("BUILDER_IMAGE", "RUNTIME_IMAGE")
LABEL_PREFIX = "io.orch"


class PinnedImage(Frozen):
    image: str = Field(description="as the policy or Dockerfile names it")
    digest: str | None = Field(description="index digest; null until `orch lock` resolved it")
    pull: str | None = Field(description="pinned pull reference (mirror@digest)")


class BuilderPlan(Frozen):
    image: str | None = Field(description="null when no candidate qualifies")
    digest: str | None
    pull: str | None
    tier: int | None
    tier_name: str | None
    exception: str | None
    toolchain: str
    toolchain_version: str | None
    requirement: str
    rejected: tuple[str, ...] = ()


class ServicePlan(Frozen):
    name: str
    dockerfile: str
    context: str
    target: str | None
    platforms: tuple[str, ...]
    depends_on: tuple[str, ...]
    image: str = Field(description="<registry>/<service>")
    tags: tuple[str, ...]
    builder: BuilderPlan | None
    runtime: PinnedImage
    literal_images: dict[str, PinnedImage] = Field(
        description="images the Dockerfile names literally, keyed exactly as written"
    )
    build_args: dict[str, str]
    build_contexts: dict[str, str] = Field(description="external named contexts (dependencies added at build)")
    labels: dict[str, str]
    input_hash: str
    binaries: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def hash_tag(self) -> str:
        return f"orch-{self.input_hash[:12]}"

    @property
    def hash_ref(self) -> str:
        """The image by its input-hash tag: what orch builds, verifies and pushes first."""
        return f"{self.image}:{self.hash_tag}"

    @property
    def resolved(self) -> bool:
        return (
            self.runtime.digest is not None
            and (self.builder is None or self.builder.digest is not None)
            and all(p.digest for p in self.literal_images.values())
        )


class BuildPlan(Frozen):
    project: str
    registry: str
    waves: tuple[tuple[str, ...], ...]
    services: tuple[ServicePlan, ...]

    def service(self, name: str) -> ServicePlan:
        return next(s for s in self.services if s.name == name)

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=2)


@dataclass(frozen=True)
class ParsedService:
    dockerfile: Dockerfile
    literal_refs: tuple[str, ...]  # external images named literally (resolved text, as written)


def parse_services(project: Project) -> dict[str, ParsedService]:
    """Parse every service's Dockerfile once; classify the images it names."""
    parsed: dict[str, ParsedService] = {}
    for name, svc in project.services.items():
        df = load_dockerfile(project.paths[name].dockerfile, build_args=svc.build_args)
        literal: list[str] = []
        for ref in df.image_refs():
            if any(arg in ORCH_ARGS for arg in ref.via_args) or ref.resolved is None:
                continue
            if ref.resolved in project.services:
                continue
            if ref.resolved not in literal:
                literal.append(ref.resolved)
        clash = set(svc.depends_on) & df.stage_names()
        if clash:
            raise ConfigError(
                f"{df.path}: stage name {sorted(clash)[0]!r} equals a service this one depends on",
                hint="orch binds a dependency to the stage-free name; rename the stage",
            )
        parsed[name] = ParsedService(df, tuple(literal))
    return parsed


def needs(project: Project, policy: Policy, parsed: Mapping[str, ParsedService]) -> list[Need]:
    """Every external image the whole project's build needs resolved (for the lock)."""
    mirrors = policy.spec.mirrors
    wanted: dict[str, Need] = {}

    def add(
        image: str, platforms: Sequence[str], toolchain: str | None = None, command: tuple[str, ...] | None = None
    ) -> None:
        try:
            key = normalise(image)
            pull = mirror(image, mirrors)
        except BadReference:
            return
        old = wanted.get(key)
        plats = frozenset(platforms) | (old.platforms if old else frozenset())
        wanted[key] = Need(
            image,
            pull,
            plats,
            toolchain or (old.toolchain if old else None),
            command or (old.version_command if old else None),
        )

    all_platforms = {p for name in project.services for p in project.platforms_of(name)}
    add(policy.spec.runtime, sorted(all_platforms))
    for name, svc in project.services.items():
        plats = project.platforms_of(name)
        if svc.toolchain:
            for candidate in policy.spec.builders.get(svc.toolchain.name, ()):
                add(
                    candidate.image,
                    plats,
                    svc.toolchain.name,
                    candidate.version_command or default_version_command(svc.toolchain.name),
                )
        for ref in parsed[name].literal_refs:
            add(ref, plats)
    return sorted(wanted.values(), key=lambda n: normalise(n.name))


def default_version_command(toolchain: str) -> tuple[str, ...]:
    return {"go": ("go", "version")}.get(toolchain, (toolchain, "--version"))


def _pin(image: str, facts: Mapping[str, ResolvedImage], mirrors: Mapping[str, str]) -> PinnedImage:
    fact = facts.get(normalise(image))
    if fact is None:
        return PinnedImage(image=image, digest=None, pull=None)
    return PinnedImage(image=image, digest=fact.digest, pull=f"{mirror(image, mirrors)}@{fact.digest}")


def make_plan(
    project: Project,
    policy: Policy,
    selection: Selection,
    facts: Mapping[str, ResolvedImage],
    *,
    today: dt.date,
    parsed: Mapping[str, ParsedService] | None = None,
    choices: Mapping[str, BuilderChoice | None] | None = None,
) -> BuildPlan:
    parsed = parsed if parsed is not None else parse_services(project)
    mirrors = policy.spec.mirrors
    registry = project.spec.registry.rstrip("/")
    hashes: dict[str, str] = {}
    files_memo: dict[FilesKey, str] = {}
    plans: dict[str, ServicePlan] = {}
    runtime = _pin(policy.spec.runtime, facts, mirrors)
    order = [name for wave in selection.waves for name in wave]
    for name in order:
        svc = project.services[name]
        platforms = selection.platforms[name]
        paths = project.paths[name]
        df = parsed[name].dockerfile
        choice = (
            (choices or {}).get(name)
            if choices is not None
            else choose_builder(policy, service=name, spec=svc, platforms=platforms, facts=facts, today=today)
        )
        builder = None
        warnings: list[str] = []
        if choice is not None:
            warnings.extend(choice.warnings)
            builder = BuilderPlan(
                image=choice.image,
                digest=choice.digest,
                pull=f"{mirror(choice.image, mirrors)}@{choice.digest}" if choice.image and choice.digest else None,
                tier=choice.tier,
                tier_name=choice.tier_name,
                exception=choice.exception,
                toolchain=choice.toolchain,
                toolchain_version=choice.version,
                requirement=choice.requirement,
                rejected=tuple(r.describe() for r in choice.rejected),
            )
        literal = {ref: _pin(ref, facts, mirrors) for ref in parsed[name].literal_refs}
        build_args = dict(svc.build_args)
        if builder is not None and builder.pull:
            build_args["BUILDER_IMAGE"] = builder.pull
        if runtime.pull:
            build_args["RUNTIME_IMAGE"] = runtime.pull
        contexts = {ref: f"docker-image://{pin.pull}" for ref, pin in literal.items() if pin.pull}
        input_hash = _input_hash(
            df_text=paths.dockerfile.read_bytes(),
            files_hash=_files_hash(paths.context, paths.dockerfile, df, svc.target, files_memo),
            build_args=build_args,
            target=svc.target,
            platforms=platforms,
            bases=[
                runtime.digest or "",
                (builder.digest or "") if builder else "",
                *(p.digest or "" for p in literal.values()),
            ],
            deps=[hashes[d] for d in sorted(svc.depends_on) if d in hashes],
        )
        hashes[name] = input_hash
        final = df.final_stage(svc.target)
        base_name, base_digest = _immediate_base(final, runtime, literal, svc.depends_on, registry)
        labels = {
            "org.opencontainers.image.title": name,
            f"{LABEL_PREFIX}.project": project.spec.project,
            f"{LABEL_PREFIX}.input-hash": input_hash,
            f"{LABEL_PREFIX}.runtime.image": policy.spec.runtime,
            f"{LABEL_PREFIX}.runtime.digest": runtime.digest or "",
        }
        if base_name:
            labels["org.opencontainers.image.base.name"] = base_name
        if base_digest:
            labels["org.opencontainers.image.base.digest"] = base_digest
        if builder is not None and builder.image:
            labels[f"{LABEL_PREFIX}.builder.image"] = builder.image
            labels[f"{LABEL_PREFIX}.builder.digest"] = builder.digest or ""
            labels[f"{LABEL_PREFIX}.builder.toolchain"] = f"{builder.toolchain} {builder.toolchain_version}"
            if builder.exception:
                labels[f"{LABEL_PREFIX}.exception"] = builder.exception
        plans[name] = ServicePlan(
            name=name,
            dockerfile=str(paths.dockerfile.relative_to(project.root)),
            context=str(paths.context.relative_to(project.root)) or ".",
            target=svc.target,
            platforms=platforms,
            depends_on=tuple(sorted(svc.depends_on)),
            image=f"{registry}/{name}",
            tags=svc.tags,
            builder=builder,
            runtime=runtime,
            literal_images=literal,
            build_args=build_args,
            build_contexts=contexts,
            labels=labels,
            input_hash=input_hash,
            binaries=svc.binaries,
            warnings=tuple(warnings),
        )
    return BuildPlan(
        project=project.spec.project,
        registry=registry,
        waves=tuple(tuple(w) for w in selection.waves),
        services=tuple(plans[n] for n in order),
    )


def _immediate_base(
    final: Stage, runtime: PinnedImage, literal: Mapping[str, PinnedImage], deps: Sequence[str], registry: str
) -> tuple[str | None, str | None]:
    base = final.base_image
    if base is None:
        return None, None
    resolved = base.resolved
    if "RUNTIME_IMAGE" in base.via_args:
        return runtime.image, runtime.digest
    if resolved in deps:
        return f"{registry}/{resolved}", None  # the digest is known once the dependency is built
    if resolved is not None and resolved in literal:
        return literal[resolved].image, literal[resolved].digest
    return resolved, None


FilesKey = tuple[Path, tuple[str, ...], tuple[str, ...] | None]


def _files_hash(context: Path, dockerfile: Path, df: Dockerfile, target: str | None, memo: dict[FilesKey, str]) -> str:
    """The hash of the context files the Dockerfile takes. Services sharing a context and the same
    COPY sources (a monorepo) share one walk and one hash per plan."""
    ignore = read_dockerignore(context, dockerfile)
    copies = df.copy_sources(target)
    # an unresolved source (COPY ${X} .) could take anything: hash the whole context then
    sources = None if any(not s.resolved for s in copies) else [s.source for s in copies]
    key = (context, tuple(ignore), tuple(sorted(sources)) if sources is not None else None)
    if key not in memo:
        memo[key] = hash_files(context, context_files(context, sources=sources, ignore=ignore))
    return memo[key]


def _input_hash(
    *,
    df_text: bytes,
    files_hash: str,
    build_args: Mapping[str, str],
    target: str | None,
    platforms: Sequence[str],
    bases: Sequence[str],
    deps: Sequence[str],
) -> str:
    payload = json.dumps(
        {
            "dockerfile": hashlib.sha256(df_text).hexdigest(),
            "files": files_hash,
            "build_args": dict(sorted(build_args.items())),
            "target": target,
            "platforms": list(platforms),
            "bases": list(bases),
            "deps": list(deps),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
