"""ELF headers of a binary: machine, class, type, interpreter and DT_NEEDED, read from bytes.

Only the ELF header, the program headers and the dynamic segment are read (never symbol tables),
so checking a 20 MB binary takes milliseconds. Corrupt input never leaks pyelftools' exceptions:
it becomes `NotAnElf`.
"""

from __future__ import annotations

import io
import string
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

__all__ = [
    "PLATFORM_MACHINES",
    "ElfInfo",
    "NotAnElf",
    "describe_non_elf",
    "expected_bits",
    "expected_byte_order",
    "expected_machine",
    "platform_mismatch",
    "read_elf",
]

ELF_MAGIC = b"\x7fELF"

# What pyelftools (or struct) raises on corrupt or truncated input. AssertionError and
# AttributeError come from pyelftools' string-table lookups on malformed dynamic segments.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ELFError,
    ConstructError,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AssertionError,
    AttributeError,
    ArithmeticError,
    EOFError,
)

_MACHINE_NAMES: dict[int, str] = {
    2: "SPARC",
    3: "i386",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    43: "SPARC V9",
    50: "IA-64",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}

_FILE_TYPES: dict[int, str] = {
    0: "none",
    1: "relocatable",
    2: "executable",
    3: "shared object",
    4: "core",
}

_DF_1_PIE = 0x08000000

# GOARCH / OCI platform architecture -> (e_machine, bits, byte order).
_PLATFORM_ARCH: dict[str, tuple[int, int, str]] = {
    "amd64": (62, 64, "little"),
    "arm64": (183, 64, "little"),
    "386": (3, 32, "little"),
    "arm": (40, 32, "little"),
    "ppc64le": (21, 64, "little"),
    "ppc64": (21, 64, "big"),
    "s390x": (22, 64, "big"),
    "riscv64": (243, 64, "little"),
    "loong64": (258, 64, "little"),
    "mips64le": (8, 64, "little"),
    "mips64": (8, 64, "big"),
    "mipsle": (8, 32, "little"),
    "mips": (8, 32, "big"),
}

PLATFORM_MACHINES: dict[str, int] = {arch: spec[0] for arch, spec in _PLATFORM_ARCH.items()}

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
}


class NotAnElf(ValueError):
    """The bytes are not a (complete, parseable) ELF file; the message says what they look like."""


@dataclass(frozen=True)
class ElfInfo:
    machine: str
    machine_code: int
    bits: int
    file_type: str
    interpreter: str | None
    needed: tuple[str, ...]
    byte_order: str = "little"

    @property
    def is_static(self) -> bool:
        """No PT_INTERP and no DT_NEEDED: a static-PIE (ET_DYN with PT_DYNAMIC only) is static."""
        return self.interpreter is None and not self.needed

    @property
    def is_executable(self) -> bool:
        return self.file_type in {"executable", "pie executable"}

    def describe(self) -> str:
        head = f"ELF {self.bits}-bit {self.machine} {self.file_type}"
        if self.byte_order == "big":
            head = f"ELF {self.bits}-bit MSB {self.machine} {self.file_type}"
        if self.is_static:
            return f"{head}, statically linked"
        details = []
        if self.interpreter is not None:
            details.append(f"interpreter {self.interpreter}")
        if self.needed:
            details.append("needs " + ", ".join(self.needed))
        return f"{head}, dynamically linked ({', '.join(details)})"


def read_elf(data: bytes) -> ElfInfo:
    """Parse the ELF header, program headers and dynamic segment of `data`.

    Raises NotAnElf for anything that is not a complete ELF file (garbage, truncated, a script).
    """
    if not data.startswith(ELF_MAGIC):
        raise NotAnElf(describe_non_elf(data))
    try:
        return _read_elf(data)
    except NotAnElf:
        raise
    except _PARSE_ERRORS as exc:
        raise NotAnElf(f"a corrupt or truncated ELF file ({len(data)} bytes): {exc}") from None


def _read_elf(data: bytes) -> ElfInfo:
    elf = ELFFile(io.BytesIO(data))
    little = bool(elf.little_endian)
    bits = int(elf.elfclass)
    (e_type, e_machine) = struct.unpack_from("<HH" if little else ">HH", data, 16)

    interpreter: str | None = None
    needed: list[str] = []
    flags_1 = 0
    for i in range(elf.num_segments()):
        segment = elf.get_segment(i)
        p_type = segment["p_type"]
        end = segment["p_offset"] + segment["p_filesz"]
        if p_type in {"PT_LOAD", "PT_INTERP", "PT_DYNAMIC"} and end > len(data):
            raise NotAnElf(f"a truncated ELF file ({len(data)} bytes; its {p_type} segment ends at byte {end})")
        if isinstance(segment, InterpSegment):
            interpreter = segment.get_interp_name()
        elif isinstance(segment, DynamicSegment):
            for tag in segment.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(tag.needed))  # type: ignore[attr-defined]
                elif tag.entry.d_tag == "DT_FLAGS_1":
                    flags_1 = int(tag.entry.d_val)

    file_type = _FILE_TYPES.get(e_type, f"type {e_type:#x}")
    if e_type == 3 and (interpreter is not None or flags_1 & _DF_1_PIE):
        file_type = "pie executable"
    return ElfInfo(
        machine=_MACHINE_NAMES.get(e_machine, f"machine {e_machine}"),
        machine_code=e_machine,
        bits=bits,
        file_type=file_type,
        interpreter=interpreter,
        needed=tuple(needed),
        byte_order="little" if little else "big",
    )


_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"}
_TEXT_CHARS = set(string.printable.encode())


def describe_non_elf(data: bytes) -> str:
    """What `data` looks like, for a message about a file that should have been a binary."""
    if not data:
        return "empty file"
    if data.startswith(ELF_MAGIC):
        return f"a truncated ELF file ({len(data)} bytes)"
    if data.startswith(b"#!"):
        line = data[2:].split(b"\n", 1)[0].strip().decode("utf-8", "replace")
        words = line.split()
        program = words[0].rsplit("/", 1)[-1] if words else ""
        if program == "env" and len(words) > 1:
            program = words[1].rsplit("/", 1)[-1]
        kind = "a shell script" if program in _SHELLS else "a script"
        return f"{kind} (#!{line})"
    magics = (
        (b"\x1f\x8b", "gzip data"),
        (b"\x28\xb5\x2f\xfd", "zstd data"),
        (b"PK\x03\x04", "a zip archive"),
        (b"MZ", "a Windows (PE) executable"),
        (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
        (b"\xfe\xed\xfa\xcf", "a Mach-O binary"),
        (b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class"),
        (b"\x00asm", "a WebAssembly module"),
    )
    for magic, name in magics:
        if data.startswith(magic):
            return name
    head = data[:4096]
    if all(byte in _TEXT_CHARS for byte in head):
        return "a text file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if b"\x00" not in head:
            return "a text file"
    return f"data (first bytes {data[:8].hex(' ')})"


def _arch(platform: str) -> str:
    parts = [p for p in platform.strip().lower().split("/") if p]
    if not parts:
        raise ValueError("empty platform")
    arch = parts[0] if len(parts) == 1 else parts[1]
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch not in _PLATFORM_ARCH:
        known = ", ".join(sorted(_PLATFORM_ARCH))
        raise ValueError(f"unknown architecture {arch!r} in platform {platform!r} (known: {known})")
    return arch


def expected_machine(platform: str) -> int:
    """e_machine for a platform: accepts "linux/arm64", "arm64", "linux/arm/v7"."""
    return _PLATFORM_ARCH[_arch(platform)][0]


def expected_bits(platform: str) -> int:
    return _PLATFORM_ARCH[_arch(platform)][1]


def expected_byte_order(platform: str) -> str:
    return _PLATFORM_ARCH[_arch(platform)][2]


def platform_mismatch(info: ElfInfo, platform: str) -> str | None:
    """Why `info` cannot run natively on `platform` (machine, class, byte order), or None."""
    arch = _arch(platform)
    machine, bits, order = _PLATFORM_ARCH[arch]
    if info.machine_code != machine:
        want = _MACHINE_NAMES.get(machine, f"machine {machine}")
        return f"{info.describe()}, but {platform} needs {want} (e_machine {machine})"
    if info.bits != bits:
        return f"{info.describe()}, but {platform} needs {bits}-bit"
    if info.byte_order != order:
        return f"{info.describe()}, but {platform} needs {order}-endian"
    return None
