"""The dependency graph: unknown names with did-you-mean, cycles as paths, --only, --arch, waves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import pytest
from project_files import chain, write_project

from orchestrator.config import load_project
from orchestrator.errors import ConfigError, GraphError, UsageError
from orchestrator.graph import (
    build_graph,
    filter_platforms,
    parse_arches,
    select,
    split_names,
    waves,
)
from orchestrator.models import Service
from orchestrator.prepare import make_selection


def svcs(edges: Mapping[str, tuple[str, ...]]) -> dict[str, Service]:
    return {name: Service(dockerfile="Dockerfile", depends_on=deps) for name, deps in edges.items()}


# a -> b means b depends on a
DIAMOND = {
    "base": (),
    "lib": ("base",),
    "auth": ("base",),
    "api": ("lib", "auth"),
    "gateway": ("api",),
    "tools": (),
}


def test_edges_point_from_dependency_to_dependent() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert sorted(graph.edges) == [
        ("api", "gateway"),
        ("auth", "api"),
        ("base", "auth"),
        ("base", "lib"),
        ("lib", "api"),
    ]
    assert set(graph.nodes) == set(DIAMOND)


def test_unknown_dependency_suggests_the_near_name() -> None:
    with pytest.raises(GraphError) as info:
        build_graph(svcs({"gateway": (), "api": ("gatewy",)}), file="services.yaml")
    err = info.value
    assert err.message == "services.yaml: service 'api' depends on unknown service 'gatewy'"
    assert err.hint is not None
    assert err.hint.startswith("did you mean 'gateway'? ")
    assert err.exit_code == 3


def test_unknown_dependency_without_a_near_name() -> None:
    with pytest.raises(GraphError) as info:
        build_graph(svcs({"api": ("postgres",)}))
    assert info.value.hint == "depends_on names services of this file, never registry images"


def test_self_dependency() -> None:
    with pytest.raises(GraphError, match="service 'a' depends on itself"):
        build_graph(svcs({"a": ("a",)}))


def test_cycle_is_reported_as_a_path() -> None:
    with pytest.raises(GraphError) as info:
        build_graph(svcs({"a": ("c",), "b": ("a",), "c": ("b",), "d": ("a",)}), file="s.yaml")
    assert info.value.message == "s.yaml: dependency cycle: a -> b -> c -> a"
    assert info.value.hint is not None
    assert "break one depends_on" in info.value.hint


def test_two_service_cycle() -> None:
    with pytest.raises(GraphError) as info:
        build_graph(svcs({"x": ("y",), "y": ("x",)}))
    assert info.value.message.endswith("dependency cycle: x -> y -> x")


def test_cycle_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"a": ("c",), "b": ("a",), "c": ("b",)}))
    with pytest.raises(GraphError) as info:
        make_selection(load_project(path))
    assert info.value.message == f"{path}: dependency cycle: a -> b -> c -> a"


# --- selection -----------------------------------------------------------------------------------


def test_only_takes_the_service_and_its_ancestors() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert set(select(graph, ["api"]).nodes) == {"api", "lib", "auth", "base"}
    assert set(select(graph, ["lib"]).nodes) == {"lib", "base"}
    assert set(select(graph, ["tools"]).nodes) == {"tools"}


def test_only_never_takes_descendants() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert "gateway" not in select(graph, ["api"])


def test_only_keeps_the_edges_among_the_chosen() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert sorted(select(graph, ["api"]).edges) == [
        ("auth", "api"),
        ("base", "auth"),
        ("base", "lib"),
        ("lib", "api"),
    ]


@pytest.mark.parametrize(
    "only",
    [["lib,tools"], ["lib", "tools"], ["lib, tools"], ["lib,", ",tools"], ["lib", "tools,lib"]],
)
def test_only_with_commas_and_repeats(only: list[str]) -> None:
    graph = build_graph(svcs(DIAMOND))
    assert set(select(graph, only).nodes) == {"lib", "base", "tools"}


def test_empty_only_selects_everything() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert select(graph, []) is graph
    assert set(select(graph, [" , "]).nodes) == set(DIAMOND)


def test_selection_is_a_copy() -> None:
    graph = build_graph(svcs(DIAMOND))
    chosen = select(graph, ["lib"])
    chosen.add_node("extra")
    assert "extra" not in graph


def test_unknown_only_suggests_the_near_name() -> None:
    graph = build_graph(svcs(DIAMOND))
    with pytest.raises(GraphError) as info:
        select(graph, ["gatewy"])
    assert info.value.message == "--only gatewy: no such service"
    assert info.value.hint == "did you mean 'gateway'?"


def test_unknown_only_without_a_near_name_lists_services() -> None:
    graph = build_graph(svcs(DIAMOND))
    with pytest.raises(GraphError) as info:
        select(graph, ["lib,zzzzzz"])
    assert info.value.hint == "services: api, auth, base, gateway, lib, tools"


def test_split_names() -> None:
    assert split_names(["a,b", " c ", "", "d,,e"]) == ["a", "b", "c", "d", "e"]


# --- platforms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["arm64"], ("linux/arm64",)),
        (["linux/arm64"], ("linux/arm64",)),
        (["linux/arm64/v8"], ("linux/arm64",)),
        (["amd64,arm64"], ("linux/amd64", "linux/arm64")),
        (["amd64", "linux/arm64", "arm64"], ("linux/amd64", "linux/arm64")),
        (["AMD64"], ("linux/amd64",)),
        (["arm/v7"], ("linux/arm/v7",)),
        ([], ()),
    ],
)
def test_parse_arches(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_arches(values) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("mips", "--arch mips: unknown architecture in platform 'mips'"),
        ("windows/amd64", "--arch windows/amd64: unsupported OS"),
        ("linux/amd64/v2/x", "--arch linux/amd64/v2/x: malformed platform"),
    ],
)
def test_unknown_arch_is_a_usage_error(value: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_arches(["amd64", value])
    assert info.value.message.startswith(text)
    assert info.value.exit_code == 2


def test_filter_platforms() -> None:
    declared = ("linux/amd64", "linux/arm64")
    assert filter_platforms(declared, (), service="a") == declared
    assert filter_platforms(declared, ("linux/arm64",), service="a") == ("linux/arm64",)
    with pytest.raises(ConfigError) as info:
        filter_platforms(("linux/amd64",), ("linux/arm64",), service="a")
    assert info.value.message == "service 'a' is not built for linux/arm64"
    assert info.value.hint == "it declares linux/amd64"


# --- waves ---------------------------------------------------------------------------------------


def test_waves_are_topological_generations_sorted_by_name() -> None:
    graph = build_graph(svcs(DIAMOND))
    assert waves(graph) == [["base", "tools"], ["auth", "lib"], ["api"], ["gateway"]]


def test_every_wave_only_needs_earlier_waves() -> None:
    edges = {f"s{i:02d}": tuple(f"s{j:02d}" for j in range(i) if (i * 7 + j) % 5 == 0) for i in range(40)}
    graph = build_graph(svcs(edges))
    seen: set[str] = set()
    for wave in waves(graph):
        assert wave == sorted(wave)
        for name in wave:
            assert set(graph.predecessors(name)) <= seen
        seen |= set(wave)
    assert seen == set(edges)


def test_waves_of_an_empty_graph() -> None:
    assert waves(nx.DiGraph()) == []


def test_make_selection_filters_platforms(tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"base": (), "api": ("base",), "tools": ()}))
    sel = make_selection(load_project(path), ["api"], ["arm64"])
    assert sel.waves == [["base"], ["api"]]
    assert sel.platforms == {"base": ("linux/arm64",), "api": ("linux/arm64",)}
