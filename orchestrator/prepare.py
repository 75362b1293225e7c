"""From files to a BuildPlan: load → graph → lint → resolve (lock) → select builders → plan.

The stages are the pure modules; this only sequences them and, when asked to, resolves images
through the registry and the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.config import Policy, Project, load_policy, load_project, today
from orchestrator.errors import LockError, PolicyError
from orchestrator.graph import Selection, build_graph, filter_platforms, parse_arches, select, waves
from orchestrator.lock import LOCK_NAME, LockFile, merge, read_lock, staleness, write_lock
from orchestrator.models import ResolvedImage
from orchestrator.plan import BuildPlan, ParsedService, make_plan, needs, parse_services
from orchestrator.policy.lint import Finding, lint_project
from orchestrator.policy.selection import BuilderChoice, choose_builder, require_builder

if TYPE_CHECKING:  # the engine is only reached when resolving; plan-only commands never load it
    from orchestrator.engine import Engine
    from orchestrator.engine.retry import RetryingRegistry


@dataclass
class Prepared:
    project: Project
    policy: Policy
    selection: Selection
    parsed: Mapping[str, ParsedService]
    today: dt.date
    facts: dict[str, ResolvedImage] = field(default_factory=dict)
    choices: dict[str, BuilderChoice | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    plan: BuildPlan | None = None
    lock_changes: list[str] = field(default_factory=list)

    @property
    def lock_path(self) -> Path:
        return self.project.root / LOCK_NAME

    @property
    def warnings(self) -> list[str]:
        out = [f"{f.file}:{f.line}: {f.rule} {f.message}" for f in self.findings if f.severity == "warning"]
        for choice in self.choices.values():
            if choice is not None:
                out.extend(choice.warnings)
        return list(dict.fromkeys(out))


def load(file: Path | str) -> tuple[Project, Policy]:
    project = load_project(file)
    return project, load_policy(project.policy_dir)


def make_selection(project: Project, only: Sequence[str] = (), arches: Sequence[str] = ()) -> Selection:
    graph = build_graph(project.services, file=str(project.file))
    chosen = select(graph, only)
    platforms = parse_arches(arches)
    return Selection(
        graph=chosen,
        waves=waves(chosen),
        platforms={n: filter_platforms(project.platforms_of(n), platforms, service=n) for n in chosen},
    )


def begin(file: Path | str, only: Sequence[str] = (), arches: Sequence[str] = ()) -> Prepared:
    project, policy = load(file)
    selection = make_selection(project, only, arches)
    return Prepared(project, policy, selection, parse_services(project), today())


def facts_from_lock(prep: Prepared) -> LockFile | None:
    lock = read_lock(prep.lock_path)
    if lock is not None:
        prep.facts = lock.by_name()
    return lock


def resolve(
    prep: Prepared,
    *,
    registry: RetryingRegistry,
    engine: Engine | None,
    locked: bool,
    update: bool = False,
    write: bool = True,
) -> None:
    """Bring prep.facts up to date with what the whole project needs; write orch.lock if it changed."""
    from orchestrator.resolve import resolve_needs  # engine-facing; kept out of plan-only start-up

    lock = read_lock(prep.lock_path)
    wanted = needs(prep.project, prep.policy, prep.parsed)
    problems = staleness(lock, wanted)
    if locked:
        if problems:
            raise LockError(
                "orch.lock is missing or stale:\n  - " + "\n  - ".join(problems),
                hint="run `orch lock` to update it, then commit it",
            )
        assert lock is not None
        gone = [e for e in lock.images if registry.exists(e.pinned_pull) != e.digest]
        if gone:
            raise LockError(
                "orch.lock pins images the registry no longer has:\n  - "
                + "\n  - ".join(f"{e.name}: {e.pinned_pull}" for e in gone),
                hint="run `orch lock --update` to pin what the registry serves now, then commit it",
            )
        prep.facts = lock.by_name()
        return
    resolved = resolve_needs(wanted, registry=registry, engine=engine, previous=lock, refresh=update)
    new = merge(lock, resolved, keep=[n.name for n in wanted])
    old = lock.by_name() if lock else {}
    for key, entry in new.by_name().items():
        before = old.get(key)
        if before is None:
            prep.lock_changes.append(f"{entry.name}: added at {entry.digest}")
        elif before.digest != entry.digest:
            prep.lock_changes.append(f"{entry.name}: moved {before.digest} -> {entry.digest}")
    prep.facts = new.by_name()
    if write and (lock is None or new.by_name() != old or problems):
        write_lock(prep.lock_path, new)


def choose(prep: Prepared) -> None:
    """Each selected service's builder choice (with every rejection's reason); never raises."""
    for name in [n for wave in prep.selection.waves for n in wave]:
        choice = choose_builder(
            prep.policy,
            service=name,
            spec=prep.project.services[name],
            platforms=prep.selection.platforms[name],
            facts=prep.facts,
            today=prep.today,
        )
        prep.choices[name] = choice


def require_builders(prep: Prepared) -> None:
    """The policy error that says everything, for the first service no builder qualifies for."""
    for name, choice in prep.choices.items():
        if choice is not None:
            require_builder(choice, prep.selection.platforms[name])


def lint(prep: Prepared) -> list[Finding]:
    prep.findings = lint_project(prep.project, prep.policy, prep.parsed, today=prep.today, choices=prep.choices)
    return prep.findings


def require_clean(findings: Sequence[Finding]) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        lines = [f"{f.file}:{f.line}: {f.rule} [{f.service}] {f.message} (fix: {f.fix})" for f in errors]
        raise PolicyError(
            f"{len(errors)} policy error{'s' if len(errors) > 1 else ''} in the Dockerfiles:\n  " + "\n  ".join(lines),
            hint="run `orch policy check` for the full list with warnings",
        )


def finish(prep: Prepared) -> BuildPlan:
    prep.plan = make_plan(
        prep.project,
        prep.policy,
        prep.selection,
        prep.facts,
        today=prep.today,
        parsed=prep.parsed,
        choices=prep.choices,
    )
    return prep.plan
