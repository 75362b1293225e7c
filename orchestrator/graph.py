"""The dependency graph of services: unknown names, cycles, selection and build waves.

An edge `a -> b` means b builds on a's image (b `depends_on` a), so topological generations are the
build waves: every service in a wave only needs services of earlier waves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from orchestrator.config import suggest
from orchestrator.errors import ConfigError, GraphError, UsageError
from orchestrator.models import Service, normalise_platform


def build_graph(services: Mapping[str, Service], *, file: str = "services.yaml") -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(services)
    for name, svc in services.items():
        for dep in svc.depends_on:
            if dep not in services:
                near = suggest(dep, list(services))
                raise GraphError(
                    f"{file}: service {name!r} depends on unknown service {dep!r}",
                    hint=(f"did you mean '{near}'? " if near else "")
                    + "depends_on names services of this file, never registry images",
                )
            if dep == name:
                raise GraphError(f"{file}: service {name!r} depends on itself")
            graph.add_edge(dep, name)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        path = [edge[0] for edge in cycle] + [cycle[0][0]]
        raise GraphError(
            f"{file}: dependency cycle: {' -> '.join(path)}",
            hint="a service cannot build on an image that is built from it; break one depends_on",
        )
    return graph


def split_names(values: Iterable[str]) -> list[str]:
    """`--only a,b --only c` → [a, b, c]."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def select(graph: nx.DiGraph, only: Sequence[str]) -> nx.DiGraph:
    """The services named and everything they need (their ancestors), or all when `only` is empty."""
    names = split_names(only)
    if not names:
        return graph
    wanted: set[str] = set()
    for name in names:
        if name not in graph:
            near = suggest(name, list(graph.nodes))
            raise GraphError(
                f"--only {name}: no such service",
                hint=f"did you mean '{near}'?" if near else f"services: {', '.join(sorted(graph))}",
            )
        wanted.add(name)
        wanted |= nx.ancestors(graph, name)
    return graph.subgraph(wanted).copy()


def parse_arches(values: Iterable[str]) -> tuple[str, ...]:
    """`--arch amd64,linux/arm64 --arch arm64` → ('linux/amd64', 'linux/arm64')."""
    result: list[str] = []
    for part in split_names(values):
        try:
            platform = normalise_platform(part)
        except ValueError as exc:
            raise UsageError(f"--arch {part}: {exc}") from None
        if platform not in result:
            result.append(platform)
    return tuple(result)


def filter_platforms(declared: Sequence[str], arches: Sequence[str], *, service: str) -> tuple[str, ...]:
    if not arches:
        return tuple(declared)
    chosen = tuple(p for p in declared if p in arches)
    if not chosen:
        raise ConfigError(
            f"service {service!r} is not built for {', '.join(arches)}",
            hint=f"it declares {', '.join(declared)}",
        )
    return chosen


def waves(graph: nx.DiGraph) -> list[list[str]]:
    """Build waves: topological generations, each sorted by name for a stable order."""
    return [sorted(generation) for generation in nx.topological_generations(graph)]


@dataclass(frozen=True)
class Selection:
    graph: nx.DiGraph
    waves: list[list[str]]
    platforms: Mapping[str, tuple[str, ...]]
