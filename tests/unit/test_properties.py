"""Whatever the input, the loader fails with an OrchError (file, line, key) and nothing else: no
KeyError, TypeError, RecursionError, yaml or pydantic error escapes."""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from project_files import DOCKERFILE, POLICY

from orchestrator.config import _resolve, load_policy, load_project, parse_yaml, validate
from orchestrator.errors import OrchError
from orchestrator.graph import build_graph, parse_arches, select
from orchestrator.models import PolicyFile, ServicesFile

FIELDS = [
    "version", "project", "registry", "platforms", "policy", "builder", "services", "dockerfile",
    "context", "target", "depends_on", "toolchain", "build_args", "binaries", "allow_cgo",
    "startup",
    "tags", "name", "command", "expect", "grace", "http", "port", "path", "tiers", "runtime",
    "builders", "registries", "image", "advisories", "mirrors", "<<", "api", "Bad Name",
]  # fmt: skip
PATHS = [
    ".", "", "Dockerfile", "sub", "sub/Dockerfile", "../x", "../..", "/etc", "/", "link", "loop",
    "sub/../../x", "a\x00b", "x" * 300, "nope", "~", "Dockerfile/",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from([*PATHS, "amd64", "linux/arm64", "arm/v7", "mips", ">=1.22", "running", "1"]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=15,
)

# documents shaped like services.yaml, so validation goes past the top level
service = st.dictionaries(
    st.sampled_from(
        ["dockerfile", "context", "target", "depends_on", "platforms", "toolchain", "build_args",
         "binaries", "allow_cgo", "startup", "tags", "dockerfil"]
    ),
    values,
    max_size=6,
)  # fmt: skip
service_names = st.one_of(st.sampled_from(["api", "base", "gateway", "web", "on", "1"]), st.text(max_size=8))
services_doc = st.fixed_dictionaries(
    {
        "version": st.one_of(st.just(1), scalars),
        "project": st.one_of(st.just("demo"), scalars),
        "registry": st.one_of(st.just("r"), scalars),
        "services": st.one_of(st.dictionaries(service_names, service, max_size=4), values),
    },
    optional={"platforms": values, "policy": values, "builder": values, "extra": values},
)
# valid services files with random dependencies and paths: load_project and the graph
valid_service = st.fixed_dictionaries(
    {"dockerfile": st.sampled_from(PATHS)},
    optional={
        "context": st.sampled_from(PATHS),
        "depends_on": st.lists(st.sampled_from(["api", "base", "gateway", "web", "zz"]), max_size=3),
        "platforms": st.lists(st.sampled_from(["amd64", "arm64", "linux/arm/v7"]), max_size=2),
    },
)
valid_doc = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "project": st.just("demo"),
        "registry": st.just("r"),
        "services": st.dictionaries(st.sampled_from(["api", "base", "gateway", "web"]), valid_service, max_size=4),
    },
    optional={"policy": st.sampled_from(PATHS)},
)

YAML_CHARS = string.ascii_letters[:6] + string.digits[:3] + ":-[]{}&*!|>'\"#%@`,?<= \n\t\\"
yamlish_text = st.text(alphabet=YAML_CHARS, max_size=200)


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def check_services(text: str) -> None:
    try:
        spec = validate(ServicesFile, parse_yaml(text, "services.yaml"), what="services file")
    except OrchError:
        return
    with contextlib.suppress(OrchError):
        build_graph(spec.services)


def check_policy(text: str) -> None:
    with contextlib.suppress(OrchError):
        validate(PolicyFile, parse_yaml(text, "policy.yaml"), what="policy file")


@settings(max_examples=200, deadline=None)
@given(values)
def test_random_documents_raise_only_orch_errors(doc: Any) -> None:
    text = dump(doc)
    check_services(text)
    check_policy(text)


@settings(max_examples=100, deadline=None)
@given(services_doc)
def test_services_shaped_documents_raise_only_orch_errors(doc: Any) -> None:
    check_services(dump(doc))


@settings(max_examples=200, deadline=None)
@given(yamlish_text)
def test_random_yaml_text_raises_only_orch_errors(text: str) -> None:
    check_services(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_random_unicode_raises_only_orch_errors(text: str) -> None:
    check_services(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["amd64", "arm64", "linux/arm/v7", "mips", "", ",", "a/b/c/d",
                                 "windows/amd64", "linux/"]), max_size=4))  # fmt: skip
def test_arch_values_raise_only_orch_errors(values: list[str]) -> None:
    with contextlib.suppress(OrchError):
        parse_arches(values)


TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!map", "!!seq",
        "!!binary", "!!python/name:os.system", "!x", ""]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TAGS), st.text(alphabet=string.printable, max_size=25))
def test_explicitly_tagged_scalars_raise_only_orch_errors(tag: str, value: str) -> None:
    check_services(f"version: {tag} {json.dumps(value)}\nproject: {tag} {value.strip()!r}\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "link", "up", "loop", "..", ".", "missing", "f"]),
                max_size=5))  # fmt: skip
def test_cached_resolution_matches_path_resolve(tree: Path, parts: list[str]) -> None:
    """load_project resolves with a per-directory cache; it must agree with Path.resolve()."""
    dirs: dict[Path, Path] = {}
    for _ in range(2):  # the second round is served from the cache
        path = tree.joinpath(*parts)
        try:
            expected = path.resolve()
        except RuntimeError:  # symlink loop
            with pytest.raises(RuntimeError):
                _resolve(path, dirs)
            continue
        assert _resolve(path, dirs) == expected


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f").write_text("x")
    (root / "b").mkdir()
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "up").symlink_to("..", target_is_directory=True)
    (root / "b" / "f").symlink_to("../a/f")
    (root / "loop").symlink_to(root / "loop")
    return root


def _project(root: Path) -> None:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "sub" / "Dockerfile").write_text(DOCKERFILE)
    (root / "policy").mkdir(exist_ok=True)
    (root / "policy" / "policy.yaml").write_text(POLICY)
    if not (root / "link").is_symlink():
        (root / "link").symlink_to("/etc")
        (root / "loop").symlink_to(root / "loop")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes_in_a_file_raise_only_orch_errors(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(raw)
    with contextlib.suppress(OrchError):
        load_project(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_doc, st.lists(st.sampled_from(["api", "base", "web", "gatewy", "a,b"]), max_size=2))
def test_projects_with_random_paths_and_edges_raise_only_orch_errors(tmp_path: Path, doc: Any, only: list[str]) -> None:
    _project(tmp_path)
    path = tmp_path / "services.yaml"
    path.write_text(dump(doc))
    try:
        project = load_project(path)
        select(build_graph(project.services), only)
        load_policy(project.policy_dir)
    except OrchError:
        pass
