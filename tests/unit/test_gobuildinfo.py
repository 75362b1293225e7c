from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from oci_fixtures import EM_AARCH64, go_buildinfo_blob, make_elf
from packaging.version import Version

from orchestrator.verify.elf import read_elf
from orchestrator.verify.gobuildinfo import GoBuildInfo, parse_modinfo, read_go_buildinfo


def go_root() -> Path:
    spec = importlib.util.find_spec("go")
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent


@pytest.mark.parametrize(
    ("relative", "main_path"),
    [("bin/go", "cmd/go"), ("pkg/tool/linux_amd64/compile", "cmd/compile")],
)
def test_real_go_binaries(relative: str, main_path: str) -> None:
    info = read_go_buildinfo((go_root() / relative).read_bytes())
    assert info is not None
    assert info.go_version == "go1.25.5"
    assert info.version_tuple == "1.25.5"
    assert Version(info.version_tuple) >= Version("1.25.4")
    assert info.path == main_path
    assert info.goarch == "amd64"
    assert info.goos == "linux"
    assert info.cgo_enabled is False
    assert info.buildmode == "exe"
    assert info.settings["-compiler"] == "gc"
    assert info.settings["GOAMD64"] == "v1"


def test_real_go_binary_is_fast() -> None:
    data = (go_root() / "bin" / "go").read_bytes()
    start = time.perf_counter()
    read_elf(data)
    read_go_buildinfo(data)
    assert time.perf_counter() - start < 0.1


def test_non_go_elf_is_none() -> None:
    assert read_go_buildinfo(Path("/bin/ls").read_bytes()) is None
    assert read_go_buildinfo(make_elf()) is None
    assert read_go_buildinfo(b"") is None
    assert read_go_buildinfo(b"#!/bin/sh\n") is None


MODINFO = (
    "path\texample.com/gateway/cmd/gateway\n"
    "mod\texample.com/gateway\t(devel)\t\n"
    "dep\tgolang.org/x/sys\tv0.30.0\th1:abc=\n"
    "build\t-buildmode=pie\n"
    "build\t-compiler=gc\n"
    'build\t-ldflags="-s -w -X \\"main.version=1.2 beta\\""\n'
    "build\tCGO_ENABLED=1\n"
    "build\tGOARCH=arm64\n"
    "build\tGOOS=linux\n"
    "build\tGOARM64=v8.0\n"
    "build\tvcs.revision=0123abcd\n"
)


def test_crafted_blob_in_elf() -> None:
    data = make_elf(EM_AARCH64, payload=go_buildinfo_blob("go1.25.3", MODINFO))
    info = read_go_buildinfo(data)
    assert info is not None
    assert info.go_version == "go1.25.3"
    assert info.path == "example.com/gateway/cmd/gateway"
    assert info.main_module == "example.com/gateway"
    assert info.goarch == "arm64"
    assert info.cgo_enabled is True
    assert info.buildmode == "pie"
    assert info.settings["-ldflags"] == '-s -w -X "main.version=1.2 beta"'
    assert info.settings["vcs.revision"] == "0123abcd"
    assert info.deps == (("golang.org/x/sys", "v0.30.0"),)


def test_crafted_blob_in_plain_bytes() -> None:
    data = b"\0" * 48 + go_buildinfo_blob("go1.22.0", "path\tx\nbuild\tGOARCH=amd64\n") + b"\0" * 7
    info = read_go_buildinfo(data)
    assert info is not None
    assert info.go_version == "go1.22.0"
    assert info.goarch == "amd64"


def test_misaligned_magic_is_ignored() -> None:
    data = b"\0" * 5 + go_buildinfo_blob("go1.22.0", "path\tx\n")
    assert read_go_buildinfo(data) is None


def test_truncated_blob_is_none() -> None:
    blob = go_buildinfo_blob("go1.22.0", "path\tx\n")
    assert read_go_buildinfo(blob[:34]) is None


def test_blob_without_modinfo() -> None:
    info = read_go_buildinfo(go_buildinfo_blob("go1.21.0", ""))
    assert info is not None
    assert info.path == ""
    assert info.goarch is None
    assert info.cgo_enabled is None


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("go1.25.5", "1.25.5"),
        ("go1.26rc1", "1.26rc1"),
        ("go1.21", "1.21"),
        ("go1.22.1 X:boringcrypto", "1.22.1"),
        ("devel go1.26-abcdef Tue", None),
        ("", None),
    ],
)
def test_version_tuple(version: str, expected: str | None) -> None:
    assert GoBuildInfo(go_version=version, path="", main_module=None).version_tuple == expected


def test_quoted_keys_and_backquoted_values() -> None:
    info = parse_modinfo("go1.25.5", 'build\t"odd key"=`raw value`\nbuild\tDefaultGODEBUG=a=1\n')
    assert info.settings == {"odd key": "raw value", "DefaultGODEBUG": "a=1"}
