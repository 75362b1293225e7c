"""Go's embedded build info (what `go version -m BINARY` prints), read from the binary's bytes.

Format (Go's src/debug/buildinfo/buildinfo.go): a 16-byte aligned blob, in the `.go.buildinfo`
section or near the start of the writable data segment, starting with the 14-byte magic
`\\xff Go buildinf:`, then ptrSize (byte 14) and flags (byte 15). Since Go 1.18 (flags & 0x2) the
version and modinfo strings follow inline at offset 32, each prefixed by a uvarint length; before
that, the header holds pointers to Go string headers (read through the ELF program headers).
modinfo is wrapped in 16-byte sentinels and parsed like runtime/debug.ParseBuildInfo.
"""

from __future__ import annotations

import ast
import io
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from elftools.elf.elffile import ELFFile

from orchestrator.verify.elf import _PARSE_ERRORS, ELF_MAGIC

__all__ = ["BUILDINFO_MAGIC", "GoBuildInfo", "parse_modinfo", "read_go_buildinfo"]

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_FLAGS_VERSION_INLINE = 0x2
_FLAGS_BIG_ENDIAN = 0x1
_MAX_STRING = 1 << 24


@dataclass(frozen=True)
class GoBuildInfo:
    go_version: str
    path: str
    main_module: str | None
    settings: Mapping[str, str] = field(default_factory=dict)
    main_version: str | None = None
    deps: tuple[tuple[str, str], ...] = ()

    @property
    def goarch(self) -> str | None:
        return self.settings.get("GOARCH")

    @property
    def goos(self) -> str | None:
        return self.settings.get("GOOS")

    @property
    def cgo_enabled(self) -> bool | None:
        value = self.settings.get("CGO_ENABLED")
        if value is None:
            return None
        return value == "1"

    @property
    def buildmode(self) -> str | None:
        return self.settings.get("-buildmode")

    @property
    def version_tuple(self) -> str | None:
        """The Go version as a PEP 440-parseable string: "go1.25.5" -> "1.25.5",
        "go1.26rc1" -> "1.26rc1"; None for "devel ..." or anything unrecognised.
        A suffix such as " X:nodwarf5" (GOEXPERIMENT) or "-bigcorp" is dropped."""
        match = re.match(r"go(\d+(?:\.\d+){0,2}(?:(?:rc|beta)\d+)?)(?:$|[\s+-])", self.go_version)
        if match is None:
            return None
        return match.group(1)


def read_go_buildinfo(data: bytes) -> GoBuildInfo | None:
    """The build info of a Go binary, or None when `data` is not a Go binary (or has none).

    For an ELF file the `.go.buildinfo` section is read; without section headers the whole file
    is searched (the blob lies in the data segment). Non-ELF input is searched for an inline
    (Go >= 1.18) blob.
    """
    found = _find_blob(data)
    if found is None:
        return None
    version, modinfo = found
    if not version:
        return None
    # Strip the 16-byte sentinels around modinfo (cmd/go/internal/modload infoStart/infoEnd).
    modinfo = modinfo[16:-16] if len(modinfo) >= 33 and modinfo[-17] == "\n" else ""
    return parse_modinfo(version, modinfo)


def _find_blob(data: bytes) -> tuple[str, str] | None:
    elf: ELFFile | None = None
    if data.startswith(ELF_MAGIC):
        try:
            elf = ELFFile(io.BytesIO(data))
            section = elf.get_section_by_name(".go.buildinfo")
            if section is not None and section["sh_type"] != "SHT_NOBITS":
                start = int(section["sh_offset"])
                end = start + int(section["sh_size"])
                result = _decode_at(data, elf, _aligned_find(data, start, end))
                if result is not None:
                    return result
        except _PARSE_ERRORS:
            elf = None
    return _decode_at(data, elf, _aligned_find(data, 0, len(data)))


def _aligned_find(data: bytes, start: int, end: int) -> int:
    pos = data.find(BUILDINFO_MAGIC, start, end)
    while pos != -1 and pos % 16:
        pos = data.find(BUILDINFO_MAGIC, pos + 1, end)
    return pos


def _decode_at(data: bytes, elf: ELFFile | None, pos: int) -> tuple[str, str] | None:
    if pos < 0 or pos + _HEADER_SIZE > len(data):
        return None
    ptr_size = data[pos + 14]
    flags = data[pos + 15]
    if flags & _FLAGS_VERSION_INLINE:
        decoded = _uvarint_string(data, pos + _HEADER_SIZE)
        if decoded is None:
            return None
        version, after = decoded
        mod = _uvarint_string(data, after)
        return version, (mod[0] if mod else "")
    if elf is None or ptr_size not in (4, 8):
        return None
    try:
        return _decode_pointers(data, elf, pos, ptr_size, big=bool(flags & _FLAGS_BIG_ENDIAN))
    except _PARSE_ERRORS:
        return None


def _uvarint_string(data: bytes, pos: int) -> tuple[str, int] | None:
    length = 0
    shift = 0
    for i in range(10):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            pos += i + 1
            break
    else:
        return None
    if length > _MAX_STRING or pos + length > len(data):
        return None
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


def _decode_pointers(data: bytes, elf: ELFFile, pos: int, ptr_size: int, *, big: bool) -> tuple[str, str] | None:
    """Pre-1.18 format: the header holds pointers to Go string headers {ptr, len}."""
    fmt = (">" if big else "<") + ("I" if ptr_size == 4 else "Q")
    loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]

    def offset_of(vaddr: int) -> int | None:
        for seg in loads:
            if seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                return int(vaddr - seg["p_vaddr"] + seg["p_offset"])
        return None

    def read_string(header_addr: int) -> str:
        off = offset_of(header_addr)
        if off is None or off + 2 * ptr_size > len(data):
            return ""
        str_ptr, str_len = struct.unpack_from(fmt + fmt[1], data, off)
        str_off = offset_of(str_ptr)
        if str_off is None or str_len > _MAX_STRING or str_off + str_len > len(data):
            return ""
        return data[str_off : str_off + str_len].decode("utf-8", "replace")

    (vers_ptr,) = struct.unpack_from(fmt, data, pos + 16)
    (mod_ptr,) = struct.unpack_from(fmt, data, pos + 16 + ptr_size)
    return read_string(vers_ptr), read_string(mod_ptr)


def _unquote(raw: str) -> str:
    """Undo Go's strconv.Quote (or a backquoted raw string) on a build setting value."""
    if len(raw) >= 2 and raw[0] == raw[-1] == "`":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw[1:-1]
        return value if isinstance(value, str) else raw[1:-1]
    return raw


def parse_modinfo(go_version: str, modinfo: str) -> GoBuildInfo:
    """Parse the (sentinel-stripped) modinfo lines like runtime/debug.ParseBuildInfo."""
    path = ""
    main_module: str | None = None
    main_version: str | None = None
    deps: list[tuple[str, str]] = []
    settings: dict[str, str] = {}
    for line in modinfo.split("\n"):
        kind, _, rest = line.partition("\t")
        cols = rest.split("\t")
        if kind == "path":
            path = rest
        elif kind == "mod" and cols:
            main_module = cols[0]
            main_version = cols[1] if len(cols) > 1 else None
        elif kind == "dep" and len(cols) >= 2:
            deps.append((cols[0], cols[1]))
        elif kind == "build" and rest:
            if rest[0] in '"`':
                match = re.match(r'"(?:[^"\\]|\\.)*"|`[^`]*`', rest)
                if match is None or rest[match.end() : match.end() + 1] != "=":
                    continue
                key = _unquote(match.group(0))
                raw_value = rest[match.end() + 1 :]
            else:
                key, eq, raw_value = rest.partition("=")
                if not eq:
                    continue
            settings[key] = _unquote(raw_value)
    return GoBuildInfo(
        go_version=go_version,
        path=path,
        main_module=main_module,
        settings=MappingProxyType(settings),
        main_version=main_version,
        deps=tuple(deps),
    )
