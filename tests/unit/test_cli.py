"""The command line, in-process through cli.main(argv): exit codes, `plan --json`, `graph`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from project_files import chain, services, write_project

from orchestrator.cli import main
from orchestrator.errors import ExitCode, Interrupted, worst_exit_code

DIAMOND = {
    "base": (),
    "lib": ("base",),
    "auth": ("base",),
    "api": ("lib", "auth"),
    "gateway": ("api",),
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def diamond(tmp_path: Path) -> Path:
    return write_project(tmp_path, chain(DIAMOND))


def plan_json(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "-f", str(path), "plan", "--json", *extra)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


# --- exit codes ----------------------------------------------------------------------------------


def test_config_error_exits_2_with_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, services("services:\n  api:\n    dockerfil: Dockerfile\n"))
    code, out, err = run(capsys, "-f", str(path), "graph")
    assert code == 2
    assert out == ""
    assert f"orch: error: {path}:6: services.api.dockerfil: unknown key" in err
    assert "hint: did you mean 'dockerfile'?" in err


def test_missing_services_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "-f", str(tmp_path / "nope.yaml"), "plan", "--json")
    assert code == 2
    assert f"orch: error: {tmp_path / 'nope.yaml'}: services file not found" in err


def test_cycle_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"a": ("c",), "b": ("a",), "c": ("b",)}))
    code, _, err = run(capsys, "-f", str(path), "graph")
    assert code == 3
    assert f"orch: error: {path}: dependency cycle: a -> b -> c -> a" in err


def test_unknown_dependency_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"gateway": (), "api": ("gatewy",)}))
    code, _, err = run(capsys, "-f", str(path), "plan", "--json")
    assert code == 3
    assert "depends on unknown service 'gatewy'" in err
    assert "did you mean 'gateway'?" in err


def test_unknown_only_exits_3(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, out, err = run(capsys, "-f", str(diamond), "graph", "--only", "gatewy")
    assert code == 3
    assert out == ""
    assert "orch: error: --only gatewy: no such service\n  hint: did you mean 'gateway'?" in err


def test_unknown_arch_exits_2(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, _, err = run(capsys, "-f", str(diamond), "plan", "--json", "--arch", "mips")
    assert code == 2
    assert "orch: error: --arch mips: unknown architecture" in err


@pytest.mark.parametrize(
    "argv",
    [["graph", "--bogus"], ["frobnicate"], ["plan", "--json=yes"], ["build", "--jobs", "0"]],
)
def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str], diamond: Path, argv: list[str]) -> None:
    code, out, err = run(capsys, "-f", str(diamond), *argv)
    assert code == 2
    assert out == ""
    assert "Error: " in err


def test_interrupt_exits_130(
    capsys: pytest.CaptureFixture[str], diamond: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(file: object) -> None:
        raise Interrupted("interrupted")

    monkeypatch.setattr("orchestrator.config.load_project", interrupted)
    code, _, err = run(capsys, "-f", str(diamond), "graph")
    assert code == 130
    assert "orch: error: interrupted" in err


def test_bad_graph_format_exits_2(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, _, err = run(capsys, "-f", str(diamond), "graph", "--format", "svg")
    assert code == 2
    assert "--format svg: expected text, dot or mermaid" in err


def test_bad_log_format_exits_2(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, _, err = run(capsys, "--log-format", "xml", "-f", str(diamond), "graph")
    assert code == 2
    assert "--log-format xml: expected auto, console or json" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "plan" in out
    assert "graph" in out


def test_services_file_from_the_environment(
    capsys: pytest.CaptureFixture[str], diamond: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_FILE", str(diamond))
    code, out, _ = run(capsys, "graph", "--only", "lib")
    assert code == 0
    assert "lib" in out


# --- plan --json ---------------------------------------------------------------------------------


def test_plan_json_has_waves_and_services(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    data = plan_json(capsys, diamond)
    assert data["project"] == "demo"
    assert data["registry"] == "127.0.0.1:5000/demo"
    assert data["waves"] == [["base"], ["auth", "lib"], ["api"], ["gateway"]]
    names = [s["name"] for s in data["services"]]
    assert names == ["base", "auth", "lib", "api", "gateway"]
    api = next(s for s in data["services"] if s["name"] == "api")
    assert api["platforms"] == ["linux/amd64", "linux/arm64"]
    assert api["depends_on"] == ["auth", "lib"]
    assert api["dockerfile"] == "Dockerfile"
    assert api["context"] == "."
    assert api["image"] == "127.0.0.1:5000/demo/api"
    assert api["builder"] is None  # no toolchain declared
    assert len(api["input_hash"]) == 64


def test_plan_json_without_a_lock_leaves_digests_null(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"base": (), "api": ("base",)}, toolchain=True))
    data = plan_json(capsys, path)
    for svc in data["services"]:
        assert svc["runtime"] == {
            "image": "gcr.io/distroless/static-debian12:nonroot",
            "digest": None,
            "pull": None,
        }
        builder = svc["builder"]
        assert builder["digest"] is None
        assert builder["pull"] is None
        assert builder["toolchain"] == "go"
        assert builder["requirement"] == ">=1.22"
        assert builder["toolchain_version"] is None
        assert any("not resolved yet" in r for r in builder["rejected"])
        assert "BUILDER_IMAGE" not in svc["build_args"]
        assert "RUNTIME_IMAGE" not in svc["build_args"]


def test_plan_json_unchosen_builder_is_null_not_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"api": ()}, toolchain=True))
    svc = plan_json(capsys, path)["services"][0]
    assert svc["builder"]["image"] is None
    assert not any(k.startswith("io.orch.builder") for k in svc["labels"])


def test_plan_json_only_and_arch(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    data = plan_json(capsys, diamond, "--only", "lib", "--only", "auth", "--arch", "arm64")
    assert data["waves"] == [["base"], ["auth", "lib"]]
    assert {s["name"] for s in data["services"]} == {"base", "auth", "lib"}
    assert all(s["platforms"] == ["linux/arm64"] for s in data["services"])


def test_plan_json_input_hash_is_stable(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    first = plan_json(capsys, diamond)
    second = plan_json(capsys, diamond)
    assert first == second


def test_plan_table(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, out, _ = run(capsys, "-f", str(diamond), "plan")
    assert code == 0
    assert "demo: 5 services in 4 waves" in out
    assert "gateway" in out
    assert "run `orch lock`" in out


# --- graph ---------------------------------------------------------------------------------------


def test_graph_text(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, out, _ = run(capsys, "-f", str(diamond), "graph")
    assert code == 0
    assert out.splitlines() == [
        "wave 1:",
        "  base [linux/amd64, linux/arm64]",
        "wave 2:",
        "  auth [linux/amd64, linux/arm64] <- base",
        "  lib [linux/amd64, linux/arm64] <- base",
        "wave 3:",
        "  api [linux/amd64, linux/arm64] <- auth, lib",
        "wave 4:",
        "  gateway [linux/amd64, linux/arm64] <- api",
    ]


def test_graph_dot(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, out, _ = run(capsys, "-f", str(diamond), "graph", "--format", "dot")
    assert code == 0
    assert out.startswith("digraph orch {\n")
    assert out.rstrip().endswith("}")
    for a, b in [
        ("base", "lib"),
        ("base", "auth"),
        ("lib", "api"),
        ("auth", "api"),
        ("api", "gateway"),
    ]:
        assert f'  "{a}" -> "{b}";' in out
    assert out.count("->") == 5


def test_graph_mermaid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_project(tmp_path, chain({"base-image": (), "my.api": ("base-image",)}))
    code, out, _ = run(capsys, "-f", str(path), "graph", "--format", "mermaid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "graph LR"
    assert "  base_image[base-image]" in lines
    assert "  my_api[my.api]" in lines
    assert "  base_image --> my_api" in lines


def test_graph_only_shows_the_selection(capsys: pytest.CaptureFixture[str], diamond: Path) -> None:
    code, out, _ = run(capsys, "-f", str(diamond), "graph", "--format", "dot", "--only", "lib")
    assert code == 0
    assert '"base" -> "lib"' in out
    assert "gateway" not in out
    assert "auth" not in out


# --- worst_exit_code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0, 0], 0),
        ([6], 6),
        ([6, 3, 7], 3),
        ([0, 8, 5], 5),
        ([2, 130, 6], 130),
        ([130], 130),
        ([ExitCode.BUILD, ExitCode.VERIFY], 6),
        ([ExitCode.PUBLISH, ExitCode.INTERRUPTED, ExitCode.USAGE], 130),
    ],
)
def test_worst_exit_code(codes: list[int], expected: int) -> None:
    assert worst_exit_code(codes) == expected
    assert type(worst_exit_code(codes)) is int
