"""Files out of one platform's image in an OCI image layout or `docker save` archive, no engine.

`ImageLayout.open(path)` takes a tar archive or a directory holding `index.json` + `blobs/` (an OCI
layout, which is also what `docker save` writes since Docker 25) or a legacy `manifest.json`.
`read_file` merges layers like overlayfs, scanning from the top layer down and stopping as soon as
the path is found: whiteouts (`.wh.NAME`, `.wh..wh..opq`), symlinks (absolute and relative,
resolved inside the image root) and hardlinks are honoured. Layers are streamed (gzip or plain
tar, detected by magic bytes; zstd only when this Python can decompress it).
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

__all__ = ["FileNotInImage", "ImageLayout", "LayoutError", "PlatformImage", "read_file_from_tar"]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_MAX_SYMLINKS = 40
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_WH = ".wh."
_OPAQUE = ".wh..wh..opq"


class LayoutError(ValueError):
    """The layout or archive is unreadable, or a request cannot be answered from it."""


class FileNotInImage(LayoutError):
    def __init__(self, path: str, platform: str, reason: str = "no such file") -> None:
        self.path = path
        self.platform = platform
        self.reason = reason
        super().__init__(f"{path} is not a file in the {platform} image: {reason}")

    @property
    def is_directory(self) -> bool:
        return self.reason == "is a directory"


@dataclass(frozen=True)
class PlatformImage:
    platform: str
    manifest_digest: str
    config_digest: str
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]
    config: Mapping[str, Any] = field(compare=False, repr=False)


# --- blob storage: a directory or a tar archive -------------------------------------------------


class _Bounded(io.RawIOBase):
    """A read-only window [offset, offset+size) of a file, opened on demand."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._file.readinto(view[: min(len(view), self._left)])
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class _Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.legacy = False
        self._members: dict[str, tarfile.TarInfo] | None = None
        if not path.is_dir():
            try:
                with tarfile.open(path, "r:") as archive:
                    self._members = {_norm(m.name): m for m in archive.getmembers()}
            except (tarfile.TarError, OSError) as exc:
                raise LayoutError(f"{path}: not an image layout directory or tar archive: {exc}") from exc

    def exists(self, name: str) -> bool:
        if self._members is None:
            return (self.path / name).is_file()
        return self._resolve(name) is not None

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        assert self._members is not None
        for _ in range(_MAX_SYMLINKS):
            member = self._members.get(_norm(name))
            if member is None or not member.issym():
                return member
            name = posixpath.join(posixpath.dirname(_norm(name)), member.linkname)
        return None

    def open(self, name: str) -> IO[bytes]:
        if self._members is None:
            try:
                return (self.path / name).open("rb")
            except OSError as exc:
                raise LayoutError(f"{self.path}: cannot read {name}: {exc}") from exc
        member = self._resolve(name)
        if member is None or not member.isfile():
            raise LayoutError(f"{self.path}: the archive has no {name}")
        return io.BufferedReader(_Bounded(self.path, member.offset_data, member.size), 1 << 16)

    def read_json(self, name: str) -> Any:
        with self.open(name) as f:
            try:
                return json.load(f)
            except ValueError as exc:
                raise LayoutError(f"{self.path}: {name} is not valid JSON: {exc}") from exc

    def blob_name(self, digest: str) -> str:
        if self.legacy:
            return digest
        algorithm, sep, hexpart = digest.partition(":")
        if not sep or not hexpart.isalnum() or not algorithm.isalnum():
            raise LayoutError(f"bad digest {digest!r}")
        return f"blobs/{algorithm}/{hexpart}"


def _norm(name: str) -> str:
    """A tar member name as a root-relative path without leading ./ or /; the root is ""."""
    name = posixpath.normpath("/" + name).lstrip("/")
    return "" if name == "." else name


def _open_decompressed(raw: IO[bytes], what: str) -> IO[bytes]:
    buffered: Any = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    magic = bytes(buffered.peek(4)[:4])
    if magic[:2] == b"\x1f\x8b":
        unzipped: Any = gzip.GzipFile(fileobj=buffered, mode="rb")
        return cast("IO[bytes]", unzipped)
    if magic == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            buffered.close()
            raise LayoutError(
                f"{what} is zstd-compressed and this Python cannot decompress zstd (install the 'zstandard' package)"
            ) from None
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(buffered)
        return reader
    plain: IO[bytes] = buffered
    return plain


# --- one layer: a resumable streaming scan that indexes headers as it goes --------------------


class _Layer:
    def __init__(self, store: _Store, digest: str) -> None:
        self.store = store
        self.digest = digest
        self.entries: dict[str, tarfile.TarInfo] = {}
        self.whiteouts: set[str] = set()
        self.opaque: set[str] = set()
        self.done = False
        self._seen = 0
        self._stream: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._tar: tarfile.TarFile | None = None
        self._iter: Iterator[tarfile.TarInfo] | None = None
        self._current: tarfile.TarInfo | None = None

    def _open(self) -> None:
        self._raw = self.store.open(self.store.blob_name(self.digest))
        self._stream = _open_decompressed(self._raw, f"layer {self.digest}")
        try:
            self._tar = tarfile.open(fileobj=self._stream, mode="r|")  # noqa: SIM115 - closed in close()
        except tarfile.TarError as exc:
            self.close()
            raise LayoutError(f"layer {self.digest} is not a tar archive: {exc}") from exc
        self._iter = iter(self._tar)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._stream is not None:
            self._stream.close()
        if self._raw is not None:
            self._raw.close()  # GzipFile and tarfile leave a passed-in file object open
        self._tar = self._stream = self._raw = self._iter = self._current = None

    def _advance(self) -> tarfile.TarInfo | None:
        """The next member not yet indexed (reopening and skipping when the stream was closed)."""
        if self.done:
            return None
        if self._iter is None:
            self._open()
            assert self._iter is not None
            for _ in range(self._seen):
                if next(self._iter, None) is None:
                    break
        try:
            member = next(self._iter, None)
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.close()
            raise LayoutError(f"layer {self.digest} is corrupt: {exc}") from exc
        if member is None:
            self.done = True
            self.close()
            return None
        self._seen += 1
        self._current = member
        name = _norm(member.name)
        directory, base = posixpath.split(name)
        if base == _OPAQUE:
            self.opaque.add(directory)
        elif base.startswith(_WH):
            self.whiteouts.add(posixpath.join(directory, base[len(_WH) :]))
        else:
            self.entries[name] = member
        return member

    def find(self, name: str) -> tarfile.TarInfo | None:
        """The entry at `name` in this layer, scanning only as far as needed."""
        while name not in self.entries and not self.done:
            self._advance()
        return self.entries.get(name)

    def scan_all(self) -> None:
        while not self.done:
            self._advance()

    def read(self, member: tarfile.TarInfo, max_bytes: int, what: str) -> bytes:
        if member.size > max_bytes:
            raise LayoutError(f"{what} is {member.size} bytes, over the {max_bytes}-byte limit")
        if self._current is not member or self._tar is None:
            # Already streamed past: reopen and scan to it (hardlinks, or a re-read).
            self.close()
            target = member.offset
            self._open()
            assert self._iter is not None
            for candidate in self._iter:
                if candidate.offset == target:
                    self._current = candidate
                    break
            else:
                raise LayoutError(f"layer {self.digest}: lost {member.name} on re-read")
        assert self._tar is not None
        assert self._current is not None
        extracted = self._tar.extractfile(self._current)
        if extracted is None:
            raise LayoutError(f"{what} is not a regular file")
        data = extracted.read()
        # Streaming position moved past this member's data: resume from a fresh stream later.
        self.close()
        return data

    def blocks(self, path: str) -> tarfile.TarInfo | str | None:
        """After a full scan without `path`: what in this layer hides lower layers' `path`.

        Returns a non-directory ancestor entry (symlink to follow, or a file), "whiteout", or None.
        """
        parts = path.split("/")
        for i in range(len(parts)):
            ancestor = "/".join(parts[:i])
            target = "/".join(parts[: i + 1])
            if ancestor in self.opaque or target in self.whiteouts:
                return "whiteout"
            if i and (entry := self.entries.get(ancestor)) is not None and not entry.isdir():
                return entry
        return None


# --- the layout ---------------------------------------------------------------------------------


class ImageLayout:
    def __init__(self, store: _Store, index_digest: str | None, images: list[PlatformImage]) -> None:
        self._store = store
        self.index_digest = index_digest
        self._images = images
        self._layers: dict[str, _Layer] = {}
        self._read_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> ImageLayout:
        store = _Store(Path(path))
        if store.exists("index.json"):
            index = store.read_json("index.json")
            entries = _descriptors(index, "index.json")
            index_digest = None
            if len(entries) == 1 and _is_index(entries[0]):
                index_digest = str(entries[0]["digest"])
            images: list[PlatformImage] = []
            for entry in entries:
                images.extend(_walk(store, entry, depth=0))
        elif store.exists("manifest.json"):
            index_digest = None
            images = _legacy_images(store)
        else:
            raise LayoutError(f"{path}: neither an OCI layout (index.json) nor a docker save archive")
        unique: dict[str, PlatformImage] = {}
        for image in images:
            unique.setdefault(image.platform, image)
        return cls(store, index_digest, list(unique.values()))

    def platforms(self) -> list[PlatformImage]:
        return list(self._images)

    def image(self, platform: str) -> PlatformImage:
        want = platform.strip().lower().split("/")
        for image in self._images:
            if image.platform == "/".join(want):
                return image
        have = [image.platform.split("/") for image in self._images]
        # "linux/arm64" matches "linux/arm64/v8" and back, when that is unambiguous.
        loose = [
            image
            for image, parts in zip(self._images, have, strict=True)
            if parts[:2] == want[:2] and (len(parts) == 2 or len(want) == 2 or parts == want)
        ]
        if len(loose) == 1:
            return loose[0]
        known = ", ".join(image.platform for image in self._images) or "none"
        raise LayoutError(f"no {platform} image in {self._store.path} (platforms: {known})")

    def _layer(self, digest: str) -> _Layer:
        if digest not in self._layers:
            self._layers[digest] = _Layer(self._store, digest)
        return self._layers[digest]

    def read_file(self, platform: str, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        # layers are streamed and shared between platforms (an identical COPY layer has one digest):
        # one reader at a time
        with self._read_lock:
            return self._read_file(platform, path, max_bytes=max_bytes)

    def _read_file(self, platform: str, path: str, *, max_bytes: int) -> bytes:
        image = self.image(platform)
        layers = [self._layer(d) for d in reversed(image.layers)]
        try:
            return self._read(image, layers, path, max_bytes)
        finally:
            for layer in layers:
                layer.close()

    def _read(self, image: PlatformImage, layers: list[_Layer], path: str, max_bytes: int) -> bytes:
        current = _norm(path)
        for _ in range(_MAX_SYMLINKS):
            found: tuple[_Layer, tarfile.TarInfo] | None = None
            redirect: str | None = None
            for layer in layers:
                entry = layer.find(current)
                if entry is not None:
                    found = (layer, entry)
                    break
                blocker = layer.blocks(current)
                if blocker == "whiteout":
                    break
                if isinstance(blocker, tarfile.TarInfo):
                    ancestor = _norm(blocker.name)
                    if not blocker.issym():
                        raise FileNotInImage(path, image.platform, f"/{ancestor} is not a directory")
                    rest = current[len(ancestor) :].lstrip("/")
                    target = _link_target(ancestor, blocker.linkname)
                    redirect = _norm(posixpath.join(target, rest))
                    break
            if redirect is not None:
                current = redirect
                continue
            if found is None:
                if _has_children(layers, current):
                    raise FileNotInImage(path, image.platform, "is a directory")
                raise FileNotInImage(path, image.platform)
            layer, entry = found
            if entry.issym():
                current = _link_target(current, entry.linkname)
                continue
            if entry.isdir() or current == "":
                raise FileNotInImage(path, image.platform, "is a directory")
            if entry.islnk():
                linked = layer.entries.get(_norm(entry.linkname)) or layer.find(_norm(entry.linkname))
                if linked is None or not linked.isfile():
                    raise LayoutError(f"{path}: hardlink to missing {entry.linkname} in {layer.digest}")
                entry = linked
            if not entry.isfile():
                raise FileNotInImage(path, image.platform, "is not a regular file")
            return layer.read(entry, max_bytes, f"/{current} in the {image.platform} image")
        raise FileNotInImage(path, image.platform, "too many levels of symbolic links")


def _link_target(link_path: str, linkname: str) -> str:
    if linkname.startswith("/"):
        return _norm(linkname)
    return _norm(posixpath.join(posixpath.dirname(link_path), linkname))


def _has_children(layers: list[_Layer], path: str) -> bool:
    prefix = path + "/" if path else ""
    return any(name.startswith(prefix) for layer in layers for name in layer.entries)


def _descriptors(document: Any, where: str) -> list[dict[str, Any]]:
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise LayoutError(f"{where}: no 'manifests' list")
    return manifests


def _is_index(descriptor: Mapping[str, Any]) -> bool:
    return descriptor.get("mediaType") in _INDEX_TYPES


def _is_attestation(descriptor: Mapping[str, Any]) -> bool:
    annotations = descriptor.get("annotations") or {}
    if "vnd.docker.reference.type" in annotations:
        return True
    platform = descriptor.get("platform") or {}
    return platform.get("os") == "unknown" and platform.get("architecture") == "unknown"


def _walk(store: _Store, descriptor: Mapping[str, Any], depth: int) -> list[PlatformImage]:
    if depth > 4 or _is_attestation(descriptor):
        return []
    digest = str(descriptor.get("digest", ""))
    document = store.read_json(store.blob_name(digest))
    if _is_index(descriptor) or (isinstance(document, dict) and "manifests" in document):
        images: list[PlatformImage] = []
        for child in _descriptors(document, digest):
            images.extend(_walk(store, child, depth + 1))
        return images
    if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
        raise LayoutError(f"manifest {digest} has no layers")
    config_digest = str(document["config"]["digest"])
    config = store.read_json(store.blob_name(config_digest))
    platform = _platform_string(descriptor.get("platform") or config)
    if platform == "unknown/unknown":
        return []
    return [
        PlatformImage(
            platform=platform,
            manifest_digest=digest,
            config_digest=config_digest,
            layers=tuple(str(layer["digest"]) for layer in document["layers"]),
            diff_ids=tuple(config.get("rootfs", {}).get("diff_ids", [])),
            config=config,
        )
    ]


def _platform_string(source: Mapping[str, Any]) -> str:
    parts = [str(source.get("os", "unknown")), str(source.get("architecture", "unknown"))]
    if source.get("variant"):
        parts.append(str(source["variant"]))
    return "/".join(parts)


def _legacy_images(store: _Store) -> list[PlatformImage]:
    manifest = store.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise LayoutError(f"{store.path}: manifest.json is not a list")
    store.legacy = True  # layers and configs are named by path in the archive, not by digest
    images = []
    for entry in manifest:
        config = store.read_json(entry["Config"])
        images.append(
            PlatformImage(
                platform=_platform_string(config),
                manifest_digest="",
                config_digest=str(entry["Config"]),
                layers=tuple(entry["Layers"]),
                diff_ids=tuple(config.get("rootfs", {}).get("diff_ids", [])),
                config=config,
            )
        )
    return images


def read_file_from_tar(fileobj_or_path: str | Path | IO[bytes], path: str) -> bytes:
    """A file from a plain filesystem tar (`docker cp CID:/path -`, `docker export`).

    The member named `path` wins; failing that, the first regular file whose name has the
    basename of `path` (what `docker cp` of a single file produces). A member that is a symlink or
    hardlink is followed when the archive is seekable (a path, or a seekable file object).
    """
    want = _norm(path)
    base = posixpath.basename(want)
    try:
        if isinstance(fileobj_or_path, str | Path):
            seekable = True
            archive = tarfile.open(fileobj_or_path, "r:*")  # noqa: SIM115 - `with archive` below
        else:
            seekable = bool(getattr(fileobj_or_path, "seekable", lambda: False)())
            archive = (
                tarfile.open(fileobj=fileobj_or_path, mode="r:*")  # noqa: SIM115
                if seekable
                else tarfile.open(fileobj=fileobj_or_path, mode="r|*")  # noqa: SIM115
            )
    except (tarfile.TarError, OSError) as exc:
        raise LayoutError(f"not a tar archive: {exc}") from exc
    candidate: bytes | None = None
    with archive:
        for found in archive:
            member = found
            name = _norm(member.name)
            exact = name == want
            if not exact and (candidate is not None or posixpath.basename(name) != base):
                continue
            if member.isdir():
                if exact:
                    raise FileNotInImage(path, "tar", "is a directory")
                continue
            if member.issym() or member.islnk():
                if not seekable:
                    raise LayoutError(f"{path} is a link to {member.linkname} in a tar stream")
                member = _follow_tar_link(archive, member, path)
            if not member.isfile():
                continue
            extracted = archive.extractfile(member)
            data = extracted.read() if extracted is not None else b""
            if exact:
                return data
            candidate = data
    if candidate is not None:
        return candidate
    raise FileNotInImage(path, "tar")


def _follow_tar_link(archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    by_name = {_norm(m.name): m for m in archive.getmembers()}
    for _ in range(_MAX_SYMLINKS):
        if member.issym():
            target = _link_target(_norm(member.name), member.linkname)
        elif member.islnk():
            target = _norm(member.linkname)
        else:
            return member
        linked = by_name.get(target)
        if linked is None:
            raise FileNotInImage(path, "tar", f"dangling link to {member.linkname}")
        member = linked
    raise FileNotInImage(path, "tar", "too many levels of symbolic links")
