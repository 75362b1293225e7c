"""Builders for test inputs: crafted ELF binaries and OCI image layouts, made with Python only."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# --- ELF ----------------------------------------------------------------------------------------

EM_X86_64 = 62
EM_AARCH64 = 183
ET_EXEC = 2
ET_DYN = 3
DF_1_PIE = 0x08000000


def make_elf(
    machine: int = EM_X86_64,
    *,
    e_type: int = ET_EXEC,
    interpreter: str | None = None,
    needed: Sequence[str] = (),
    dynamic: bool = False,
    flags_1: int = 0,
    payload: bytes = b"",
) -> bytes:
    """A minimal little-endian ELF64: one PT_LOAD over the file, optional PT_INTERP and PT_DYNAMIC
    (with DT_NEEDED names in a DT_STRTAB string table), no section headers. `payload` is placed at
    a 16-byte aligned offset after the headers (e.g. a Go build info blob)."""
    dynamic = dynamic or bool(needed) or bool(flags_1)
    phnum = 1 + (interpreter is not None) + dynamic
    body = bytearray()
    base = 64 + 56 * phnum

    def place(data: bytes, align: int = 8) -> int:
        while (base + len(body)) % align:
            body.append(0)
        offset = base + len(body)
        body.extend(data)
        return offset

    phdrs: list[tuple[int, int, int, int]] = []  # (type, flags, offset, size)
    if interpreter is not None:
        raw = interpreter.encode() + b"\0"
        phdrs.append((3, 4, place(raw, 1), len(raw)))
    if dynamic:
        strtab = bytearray(b"\0")
        offsets = []
        for name in needed:
            offsets.append(len(strtab))
            strtab.extend(name.encode() + b"\0")
        strtab_off = place(bytes(strtab), 1)
        tags = [(1, off) for off in offsets] + [(5, strtab_off), (10, len(strtab))]
        if flags_1:
            tags.append((0x6FFFFFFB, flags_1))
        tags.append((0, 0))
        dyn = b"".join(struct.pack("<qQ", tag, value) for tag, value in tags)
        phdrs.append((2, 6, place(dyn), len(dyn)))
    if payload:
        place(payload, 16)
    total = base + len(body)
    phdrs.insert(0, (1, 6, 0, total))
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0x1000, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    table = b"".join(
        struct.pack("<IIQQQQQQ", p_type, flags, off, off, off, size, size, 8) for p_type, flags, off, size in phdrs
    )
    return header + table + bytes(body)


def go_buildinfo_blob(version: str, modinfo: str) -> bytes:
    """A Go >= 1.18 (inline) build info blob; `modinfo` lines are wrapped in 16-byte sentinels."""

    def uvarint_string(data: bytes) -> bytes:
        out = bytearray()
        n = len(data)
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + data

    sentinel_start = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
    sentinel_end = bytes.fromhex("f932433186182072008242104116d8f2")
    mod = sentinel_start + modinfo.encode() + sentinel_end if modinfo else b""
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    return header + uvarint_string(version.encode()) + uvarint_string(mod)


# --- tar layers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes = b""
    kind: str = "file"  # file | dir | symlink | hardlink
    target: str = ""
    mode: int = 0o755


def file(name: str, data: bytes, mode: int = 0o755) -> Entry:
    return Entry(name, data, "file", mode=mode)


def directory(name: str) -> Entry:
    return Entry(name, kind="dir")


def symlink(name: str, target: str) -> Entry:
    return Entry(name, kind="symlink", target=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, kind="hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Deletes `path` from lower layers."""
    head, _, base = path.rpartition("/")
    return file(f"{head}/.wh.{base}" if head else f".wh.{base}", b"", 0o644)


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path}/.wh..wh..opq", b"", 0o644)


def tar_bytes(entries: Iterable[Entry], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode
            if entry.kind == "file":
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[entry.kind]
            info.linkname = entry.target
            archive.addfile(info)
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


# --- OCI layout ---------------------------------------------------------------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayoutBuilder:
    """Writes blobs into `root/blobs/sha256/` and an index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def blob(self, data: bytes) -> str:
        digest = _digest(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    def json_blob(self, document: object) -> tuple[str, int]:
        data = json.dumps(document, sort_keys=True).encode()
        return self.blob(data), len(data)

    def image(
        self, platform: str, layers: Sequence[bytes], config: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        """Writes layers, config and manifest; returns the manifest descriptor for an index."""
        os_name, arch, *variant = platform.split("/")
        diff_ids = [_digest(gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer) for layer in layers]
        cfg: dict[str, object] = {
            "os": os_name,
            "architecture": arch,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": dict(config or {}),
        }
        if variant:
            cfg["variant"] = variant[0]
        config_digest, config_size = self.json_blob(cfg)
        layer_descs = [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if layer[:2] == b"\x1f\x8b" else ""),
                "digest": self.blob(layer),
                "size": len(layer),
            }
            for layer in layers
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layer_descs,
        }
        digest, size = self.json_blob(manifest)
        platform_doc: dict[str, str] = {"os": os_name, "architecture": arch}
        if variant:
            platform_doc["variant"] = variant[0]
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": platform_doc}

    def attestation(self, subject_digest: str) -> dict[str, object]:
        descriptor = self.image("unknown/unknown", [tar_bytes([file("p.json", b"{}")])])
        descriptor["annotations"] = {
            "vnd.docker.reference.digest": subject_digest,
            "vnd.docker.reference.type": "attestation-manifest",
        }
        return descriptor

    def finish(self, manifests: Sequence[Mapping[str, object]], *, wrap_in_index: bool = True) -> str | None:
        """Writes index.json (one entry: an image index over `manifests`, like buildx's OCI
        exporter) and oci-layout; returns the image index digest (None when not wrapped)."""
        (self.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        if not wrap_in_index:
            entries = list(manifests)
            index_digest = None
        else:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}
            index_digest, size = self.json_blob(index)
            entries = [{"mediaType": OCI_INDEX, "digest": index_digest, "size": size}]
        top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        (self.root / "index.json").write_text(json.dumps(top))
        return index_digest


def tar_directory(root: Path, destination: Path) -> Path:
    """Archives the layout directory `root` (like `docker save` / buildx `type=oci` output)."""
    with tarfile.open(destination, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return destination
