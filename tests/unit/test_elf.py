from __future__ import annotations

import contextlib
import importlib.util
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oci_fixtures import DF_1_PIE, EM_AARCH64, EM_X86_64, ET_DYN, make_elf

from orchestrator.verify.elf import (
    PLATFORM_MACHINES,
    NotAnElf,
    describe_non_elf,
    expected_machine,
    platform_mismatch,
    read_elf,
)


def go_root() -> Path:
    spec = importlib.util.find_spec("go")
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent


def test_static_x86_64_executable() -> None:
    info = read_elf(make_elf(EM_X86_64))
    assert (info.machine, info.machine_code, info.bits) == ("x86-64", 62, 64)
    assert info.file_type == "executable"
    assert info.is_static
    assert info.describe() == "ELF 64-bit x86-64 executable, statically linked"


def test_static_aarch64_executable() -> None:
    info = read_elf(make_elf(EM_AARCH64))
    assert (info.machine, info.machine_code) == ("AArch64", 183)
    assert info.is_static
    assert platform_mismatch(info, "linux/arm64") is None
    mismatch = platform_mismatch(info, "linux/amd64")
    assert mismatch is not None
    assert "x86-64" in mismatch


def test_dynamic_executable() -> None:
    data = make_elf(EM_AARCH64, e_type=ET_DYN, interpreter="/lib/ld-musl-aarch64.so.1", needed=["libc.so.6"])
    info = read_elf(data)
    assert info.interpreter == "/lib/ld-musl-aarch64.so.1"
    assert info.needed == ("libc.so.6",)
    assert not info.is_static
    assert info.file_type == "pie executable"
    assert info.describe() == (
        "ELF 64-bit AArch64 pie executable, dynamically linked (interpreter /lib/ld-musl-aarch64.so.1, needs libc.so.6)"
    )


def test_static_pie_is_static() -> None:
    info = read_elf(make_elf(EM_X86_64, e_type=ET_DYN, dynamic=True, flags_1=DF_1_PIE))
    assert info.is_static
    assert info.file_type == "pie executable"
    assert info.describe().endswith("statically linked")


def test_amd64_binary_in_arm64_image_is_a_mismatch() -> None:
    """Exception #001: an "arm64" image holding an amd64 Go binary."""
    info = read_elf(make_elf(EM_X86_64))
    assert info.machine_code != expected_machine("linux/arm64")
    assert platform_mismatch(info, "linux/arm64") is not None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x7fEL", b"\x7fELF", b"\x7fELF\x02\x01\x01" + b"\0" * 20, b"garbage" * 100],
)
def test_garbage_and_truncated_raise_not_an_elf(data: bytes) -> None:
    with pytest.raises(NotAnElf):
        read_elf(data)


def test_truncated_real_binary_raises_not_an_elf() -> None:
    data = (go_root() / "bin" / "go").read_bytes()
    with pytest.raises(NotAnElf, match="truncated"):
        read_elf(data[: len(data) // 2])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_corrupt_headers_only_ever_raise_not_an_elf(tail: bytes) -> None:
    with contextlib.suppress(NotAnElf):
        read_elf(b"\x7fELF" + tail)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=4, max_value=400), st.binary(min_size=1, max_size=8))
def test_mutated_valid_elf_only_raises_not_an_elf(position: int, junk: bytes) -> None:
    data = bytearray(make_elf(EM_X86_64, e_type=ET_DYN, interpreter="/lib/ld", needed=["libc.so"]))
    data[position : position + len(junk)] = junk
    with contextlib.suppress(NotAnElf):
        read_elf(bytes(data))


def test_shell_script_is_described() -> None:
    with pytest.raises(NotAnElf, match=r"a shell script \(#!/bin/sh\)"):
        read_elf(b"#!/bin/sh\necho hi\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file"),
        (b"#!/bin/sh\nexit 0\n", "a shell script (#!/bin/sh)"),
        (b"#!/usr/bin/env bash\n", "a shell script (#!/usr/bin/env bash)"),
        (b"#!/usr/bin/python3\n", "a script (#!/usr/bin/python3)"),
        (b"hello world\n", "a text file"),
        (b"\x00\x01\x02\x03\xfe\xff\x10\x11\x12", "data (first bytes 00 01 02 03 fe ff 10 11)"),
        (b"\x1f\x8b\x08\x00", "gzip data"),
    ],
)
def test_describe_non_elf(data: bytes, expected: str) -> None:
    assert describe_non_elf(data) == expected


@pytest.mark.parametrize(
    ("platform", "machine"),
    [
        ("linux/amd64", 62),
        ("linux/arm64", 183),
        ("arm64", 183),
        ("linux/arm64/v8", 183),
        ("linux/arm/v7", 40),
        ("linux/386", 3),
        ("linux/ppc64le", 21),
        ("linux/s390x", 22),
        ("linux/riscv64", 243),
    ],
)
def test_expected_machine(platform: str, machine: int) -> None:
    assert expected_machine(platform) == machine


def test_platform_machines_table() -> None:
    assert PLATFORM_MACHINES["amd64"] == 62
    assert PLATFORM_MACHINES["arm64"] == 183
    with pytest.raises(ValueError, match="unknown architecture"):
        expected_machine("linux/vax")


def test_host_ls_is_dynamic() -> None:
    info = read_elf(Path("/bin/ls").read_bytes())
    assert not info.is_static
    assert info.interpreter is not None
    assert "ld-" in info.interpreter
    assert "libc.so.6" in info.needed
    assert "libc.so.6" in info.describe()


def test_real_go_toolchain_binary() -> None:
    data = (go_root() / "bin" / "go").read_bytes()
    start = time.perf_counter()
    info = read_elf(data)
    elapsed = time.perf_counter() - start
    assert info.machine_code == 62
    assert info.machine == "x86-64"
    assert info.is_static
    assert info.describe() == "ELF 64-bit x86-64 executable, statically linked"
    assert elapsed < 0.1
