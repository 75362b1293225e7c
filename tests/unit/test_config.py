"""Loading services.yaml and the policy directory: schema errors with file, line and key; paths that
must stay inside the project; YAML that is only data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from project_files import HEADER, services, write_project

from orchestrator.config import (
    MAX_DEPTH,
    MAX_NODES,
    _scalar_constructor,
    load_policy,
    load_project,
    parse_yaml,
    today,
    validate,
)
from orchestrator.errors import ConfigError
from orchestrator.models import ServicesFile


def load_text(tmp_path: Path, text: str) -> ConfigError:
    """Write services.yaml, load it, and return the ConfigError it must raise."""
    path = write_project(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_project(path)
    return info.value


def parse_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate(ServicesFile, parse_yaml(text, "services.yaml"), what="services file")
    return info.value


# --- a valid project ------------------------------------------------------------------------------


def test_a_valid_project_loads_with_resolved_paths(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        services(
            """\
            platforms: [amd64, linux/arm64/v8]
            services:
              api:
                dockerfile: svc/api/Dockerfile
                context: svc/api
              gateway:
                dockerfile: Dockerfile
                depends_on: [api]
                platforms: [arm64]
            """
        ),
        dockerfiles=("Dockerfile", "svc/api/Dockerfile"),
    )
    project = load_project(path)
    assert list(project.services) == ["api", "gateway"]
    assert project.spec.platforms == ("linux/amd64", "linux/arm64")
    assert project.platforms_of("api") == ("linux/amd64", "linux/arm64")
    assert project.platforms_of("gateway") == ("linux/arm64",)
    assert project.paths["api"].context == (tmp_path / "svc" / "api").resolve()
    assert project.paths["api"].dockerfile == (tmp_path / "svc/api/Dockerfile").resolve()
    assert project.paths["gateway"].context == tmp_path.resolve()
    assert project.policy_dir == (tmp_path / "policy").resolve()
    assert project.doc.line_of(("services", "gateway", "depends_on")) == 11


def test_keys_yaml_11_would_read_as_booleans_or_numbers_keep_their_text() -> None:
    doc = parse_yaml("services:\n  on:\n    dockerfile: D\n  1:\n    dockerfile: D\n", "s.yaml")
    assert list(doc.data["services"]) == ["on", "1"]


def test_anchors_and_aliases_within_bounds_are_plain_data() -> None:
    doc = parse_yaml("a: &p [amd64, arm64]\nb: *p\n", "s.yaml")
    assert doc.data == {"a": ["amd64", "arm64"], "b": ["amd64", "arm64"]}


# --- schema errors ----------------------------------------------------------------------


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        services(
            """\
            services:
              api:
                dockerfile: Dockerfile
                depends_on: 5
            """
        ),
    )
    assert str(err).startswith(f"{tmp_path / 'services.yaml'}:7: services.api.depends_on: ")
    assert "valid tuple" in str(err)
    assert err.line == 7
    assert err.key == "services.api.depends_on"


def test_wrong_type_of_a_list_item_points_at_the_item() -> None:
    err = parse_error(
        services(
            """\
            services:
              api:
                dockerfile: Dockerfile
                tags:
                  - ok
                  - [not, a, string]
            """
        )
    )
    assert str(err).startswith("services.yaml:9: services.api.tags.1: Input should be a valid string")


def test_missing_required_top_level_key() -> None:
    err = parse_error("version: 1\nproject: demo\nservices: {}\n")
    assert str(err) == "services.yaml:1: registry: required key is missing"


def test_missing_required_service_key_points_at_the_service() -> None:
    err = parse_error(services("services:\n  api:\n    context: .\n"))
    assert str(err) == "services.yaml:5: services.api.dockerfile: required key is missing"


def test_version_2_is_refused() -> None:
    err = parse_error("version: 2\nproject: demo\nregistry: r\nservices: {}\n")
    assert str(err) == "services.yaml:1: version: Input should be 1"


def test_unknown_service_key_suggests_the_near_one() -> None:
    err = parse_error(services("services:\n  api:\n    dockerfil: Dockerfile\n"))
    assert err.line == 6
    assert err.key == "services.api.dockerfil"
    assert str(err).startswith("services.yaml:6: services.api.dockerfil: unknown key")
    assert err.hint is not None
    assert err.hint.startswith("did you mean 'dockerfile'? allowed keys here: dockerfile, context,")


def test_unknown_top_level_key_suggests_the_near_one() -> None:
    err = parse_error(HEADER + "service:\n  api:\n    dockerfile: D\n")
    assert err.key == "service"
    assert err.line == 4
    assert err.hint is not None
    assert "did you mean 'services'?" in err.hint


def test_unknown_nested_key_suggests_within_its_model() -> None:
    err = parse_error(
        services(
            """\
            services:
              api:
                dockerfile: D
                startup:
                  http:
                    prot: 8080
            """
        )
    )
    assert err.key == "services.api.startup.http.prot"
    assert err.line == 9
    assert err.hint == "did you mean 'port'? allowed keys here: port, path"


def test_unknown_key_without_a_near_match_lists_the_allowed_keys() -> None:
    err = parse_error(services("services:\n  api:\n    dockerfile: D\n    zzz: 1\n"))
    assert err.hint is not None
    assert err.hint.startswith("allowed keys here: dockerfile,")
    assert "did you mean" not in err.hint


def test_further_problems_are_counted() -> None:
    err = parse_error("version: 2\nproject: [x]\nservices: {}\n")
    assert "(and 2 more problems)" in str(err)


@pytest.mark.parametrize(
    ("body", "line", "key", "text"),
    [
        (
            "services:\n  Bad_Name:\n    dockerfile: D\n",
            4,
            "services",
            "service name 'Bad_Name' must be lower-case letters",
        ),
        ("platforms: [linux/mips]\nservices: {}\n", 4, "platforms.0", "unknown architecture"),
        ("platforms: [windows/amd64]\nservices: {}\n", 4, "platforms.0", "unsupported OS"),
        ("platforms: []\nservices: {}\n", 4, "platforms", "at least one platform is needed"),
        (
            "services:\n  a:\n    dockerfile: D\n    binaries: [app]\n",
            7,
            "services.a.binaries",
            "binary path 'app' must be absolute",
        ),
        (
            "services:\n  a:\n    dockerfile: D\n    toolchain: {name: go, version: latest}\n",
            7,
            "services.a.toolchain.version",
            "'latest' is not a version specifier",
        ),
        (
            "services:\n  a:\n    dockerfile: D\n    build_args: {X: 1}\n",
            7,
            "services.a.build_args.X",
            "Input should be a valid string",
        ),
        (
            "services:\n  a:\n    dockerfile: D\n    startup: {expect: forever}\n",
            7,
            "services.a.startup.expect",
            "Input should be 'exit-0' or 'running'",
        ),
    ],
)
def test_field_validation_errors_name_line_and_key(body: str, line: int, key: str, text: str) -> None:
    err = parse_error(HEADER + body)
    assert err.line == line
    assert err.key == key
    assert str(err).startswith(f"services.yaml:{line}: {key}: ")
    assert text in str(err)


def test_platforms_are_normalised() -> None:
    spec = validate(
        ServicesFile,
        parse_yaml(HEADER + "platforms: [arm/v7, AMD64, linux/arm64/v8]\nservices: {}\n", "s"),
        what="services file",
    )
    assert spec.platforms == ("linux/arm/v7", "linux/amd64", "linux/arm64")


def test_a_service_without_a_body_is_an_error() -> None:
    err = parse_error(services("services:\n  api:\n"))
    assert err.key == "services.api"
    assert err.line == 5


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "rel"),
    [
        ("    context: ../..\n", "services.api.context", "../.."),
        ("    context: /etc\n", "services.api.context", "/etc"),
        ("    context: sub/../../x\n", "services.api.context", "sub/../../x"),
    ],
)
def test_context_outside_the_project_is_refused(tmp_path: Path, line: str, key: str, rel: str) -> None:
    root = tmp_path / "proj"
    err = load_text(root, HEADER + "services:\n  api:\n    dockerfile: Dockerfile\n" + line)
    assert err.key == key
    assert err.line == 7
    assert f"path {rel!r} leaves the project directory {root.resolve()}" in str(err)
    assert err.hint is not None
    assert "must stay inside it" in err.hint


def test_dockerfile_outside_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("FROM scratch\n")
    root = tmp_path / "proj"
    err = load_text(root, services("services:\n  api:\n    dockerfile: ../x\n"))
    assert err.key == "services.api.dockerfile"
    assert err.line == 6
    assert "path '../x' leaves the project directory" in str(err)


def test_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    err = load_text(root, services("services:\n  api:\n    dockerfile: escape/Dockerfile\n"))
    assert err.key == "services.api.dockerfile"
    assert f"resolved to {(outside / 'Dockerfile').resolve()}" in str(err)


def test_symlinked_context_out_of_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ctx").symlink_to(outside, target_is_directory=True)
    err = load_text(root, services("services:\n  api:\n    dockerfile: Dockerfile\n    context: ctx\n"))
    assert err.key == "services.api.context"
    assert "leaves the project directory" in str(err)


def test_symlink_inside_the_project_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    path = write_project(tmp_path, services("services:\n  api:\n    dockerfile: alias/Dockerfile\n"))
    assert load_project(path).paths["api"].dockerfile == (tmp_path / "real" / "Dockerfile").resolve()


def test_policy_outside_the_project_is_refused(tmp_path: Path) -> None:
    path = write_project(tmp_path / "p", services("policy: ../..\nservices: {}\n"))
    project = load_project(path)
    with pytest.raises(ConfigError) as info:
        _ = project.policy_dir
    assert info.value.key == "policy"
    assert info.value.line == 4


def test_missing_dockerfile(tmp_path: Path) -> None:
    err = load_text(tmp_path, services("services:\n  api:\n    dockerfile: nope/Dockerfile\n"))
    where = f"{tmp_path / 'services.yaml'}:6: services.api.dockerfile: "
    assert str(err) == where + "path 'nope/Dockerfile' does not exist"


def test_dockerfile_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    err = load_text(tmp_path, services("services:\n  api:\n    dockerfile: svc\n"))
    assert err.key == "services.api.dockerfile"
    assert "dockerfile 'svc' is not a file" in str(err)


def test_context_that_is_a_file(tmp_path: Path) -> None:
    err = load_text(tmp_path, services("services:\n  api:\n    dockerfile: Dockerfile\n    context: main.go\n"))
    assert err.key == "services.api.context"
    assert "context 'main.go' is not a directory" in str(err)


def test_missing_context(tmp_path: Path) -> None:
    err = load_text(tmp_path, services("services:\n  api:\n    dockerfile: Dockerfile\n    context: gone\n"))
    assert err.key == "services.api.context"
    assert "path 'gone' does not exist" in str(err)


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ('"a\\0b"', "embedded null byte"),
        ("x" * 300, "too long"),
    ],
)
def test_unusable_paths_are_config_errors(tmp_path: Path, rel: str, reason: str) -> None:
    err = load_text(tmp_path, services(f"services:\n  api:\n    dockerfile: {rel}\n"))
    assert err.key == "services.api.dockerfile"
    assert reason in str(err)


def test_symlink_loop_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    err = load_text(tmp_path, services("services:\n  api:\n    dockerfile: loop\n"))
    assert err.key == "services.api.dockerfile"


# --- unsafe or broken YAML ------------------------------------------------------------------------


def test_python_tags_are_refused_with_their_line() -> None:
    err = parse_error(HEADER + 'services: !!python/object/apply:os.system ["echo"]\n')
    assert err.line == 4
    assert "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed" in str(err)


@pytest.mark.parametrize("tag", ["!!binary aGVsbG8=", "!!set {a}", "!custom x", "!!omap [a: 1]"])
def test_non_standard_tags_are_refused(tag: str) -> None:
    err = parse_error(f"a: 1\nb: {tag}\n")
    assert err.line == 2
    assert "is not allowed (only plain YAML data is read)" in str(err)


def test_duplicate_keys_name_both_lines() -> None:
    err = parse_error(services("services:\n  api:\n    dockerfile: A\n    context: .\n    dockerfile: B\n"))
    assert str(err) == "services.yaml:8: duplicate key 'dockerfile' (first on line 6)"


def test_duplicate_top_level_keys() -> None:
    err = parse_error("version: 1\nproject: a\nversion: 1\n")
    assert str(err) == "services.yaml:3: duplicate key 'version' (first on line 1)"


def test_alias_bomb_is_bounded() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    err = parse_error("\n".join(levels) + "\n")
    assert f"document expands to more than {MAX_NODES} nodes (alias bomb?)" in str(err)
    assert time.monotonic() - started < 5


def test_recursive_alias_is_an_error() -> None:
    err = parse_error("a: &x [1, *x]\n")
    assert "recursive alias" in str(err)
    assert err.line == 1


def test_deep_nesting_through_aliases_is_bounded() -> None:
    n = 600
    text = (
        "a: &a " + "[" * n + "]" * n + "\nb: &b " + "[" * n + "*a" + "]" * n + "\nc: " + "[" * n + "*b" + "]" * n + "\n"
    )
    err = parse_error(text)
    assert f"nested more than {MAX_DEPTH} levels deep" in str(err)


def test_merge_keys_are_refused() -> None:
    err = parse_error("base: &b {dockerfile: D}\nservices:\n  api:\n    <<: *b\n")
    assert str(err) == "services.yaml:4: YAML merge keys ('<<') are not supported; write the keys out"


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(b"version: 1\nproject: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert str(info.value) == f"{path}:2: services file is not valid UTF-8 (byte 0xe9)"


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(b"version: 1\n\x00\x01\x02")
    with pytest.raises(ConfigError, match="binary"):
        load_project(path)


def test_control_characters_name_the_line() -> None:
    err = parse_error("version: 1\nproject: a\x07b\n")
    assert err.line == 2
    assert "U+0007" in str(err)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = load_text(tmp_path, text)
    assert str(err) == f"{tmp_path / 'services.yaml'}: services file is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    err = parse_error(text)
    assert str(err) == "services.yaml:1: services file must be a mapping at the top level"


def test_syntax_error_names_the_line() -> None:
    err = parse_error("version: 1\nproject: [a\nregistry: r\n")
    assert err.line is not None
    assert str(err).startswith(f"services.yaml:{err.line}: invalid YAML: ")


def test_two_documents_are_refused() -> None:
    err = parse_error("version: 1\n---\nversion: 1\n")
    assert "invalid YAML" in str(err)
    assert err.line == 2


def test_collection_keys_are_refused() -> None:
    err = parse_error("? [a, b]\n: 1\n")
    assert str(err) == "services.yaml:1: mapping keys must be plain strings"


def test_unreadable_scalar_names_the_line() -> None:
    err = parse_error("a: 1\nb: 2001-13-45\n")
    assert err.line == 2
    assert "cannot read value '2001-13-45'" in str(err)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("!!bool maybe", "cannot read value 'maybe': not a valid bool"),
        ("!!timestamp soon", "cannot read value 'soon': not a valid timestamp"),
        ("!!timestamp 0000-01-01", "year 0 is out of range"),
        ("!!float fast", "could not convert string to float"),
        ("!!int zz", "invalid literal for int()"),
        ("!!map text", "YAML tag 'tag:yaml.org,2002:map' needs a collection, not the text 'text'"),
        ("!!seq text", "needs a collection"),
    ],
)
def test_explicit_standard_tags_with_bad_values(value: str, reason: str) -> None:
    err = parse_error(f"a: 1\nb: {value}\n")
    assert err.line == 2
    assert reason in str(err)


def test_explicit_standard_tags_with_good_values() -> None:
    doc = parse_yaml("a: !!int '0x10'\nb: !!str 1\nc: !!float 1\nd: !!bool yes\n", "s.yaml")
    assert doc.data == {"a": 16, "b": "1", "c": 1.0, "d": True}


def test_scalars_are_not_remembered_between_loads() -> None:
    parse_yaml("a: 1\nb: [2, 3]\n", "s.yaml")
    assert not _scalar_constructor.constructed_objects


def test_missing_services_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "services.yaml")
    assert str(info.value) == f"{tmp_path / 'services.yaml'}: services file not found"


def test_services_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, expected a file"):
        load_project(tmp_path)


# --- the policy directory -------------------------------------------------------------------------


def test_policy_loads(tmp_path: Path) -> None:
    write_project(tmp_path, services("services: {}\n"))
    policy = load_policy(tmp_path / "policy")
    assert policy.spec.runtime == "gcr.io/distroless/static-debian12:nonroot"
    assert [c.image for c in policy.spec.builders["go"]] == ["golang:1.25"]
    assert policy.exceptions == ()


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "policy")
    assert str(info.value).startswith(f"{tmp_path / 'policy' / 'policy.yaml'}: policy file not found")


def test_policy_schema_error_names_the_line(tmp_path: Path) -> None:
    policy = "tiers: []\nruntime: r\nbuilders:\n  go:\n    - imag: golang\n"
    write_project(tmp_path, services("services: {}\n"), policy=policy)
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "policy")
    assert info.value.line == 5
    assert info.value.key == "builders.go.0.imag"
    assert info.value.hint is not None
    assert info.value.hint.startswith("did you mean 'image'?")


def test_duplicate_exception_ids_are_refused(tmp_path: Path) -> None:
    record = "id: EXC-1\nstatus: requested\nservices: [api]\nimage: golang:1.25\nreason: r\nexpires: 2030-01-01\n"
    write_project(
        tmp_path,
        services("services: {}\n"),
        files={"policy/exceptions/a.yaml": record, "policy/exceptions/b.yaml": record},
    )
    with pytest.raises(ConfigError, match="exception id 'EXC-1' is also used by"):
        load_policy(tmp_path / "policy")


def test_today_reads_orch_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_TODAY", "2026-01-09")
    assert today().isoformat() == "2026-01-09"
    monkeypatch.setenv("ORCH_TODAY", "January")
    with pytest.raises(ConfigError, match="ORCH_TODAY='January' is not a date"):
        today()
