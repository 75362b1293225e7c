from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from oci_fixtures import (
    EM_AARCH64,
    EM_X86_64,
    LayoutBuilder,
    directory,
    file,
    hardlink,
    make_elf,
    opaque,
    symlink,
    tar_bytes,
    tar_directory,
    whiteout,
)

from orchestrator.verify.elf import read_elf
from orchestrator.verify.layout import (
    FileNotInImage,
    ImageLayout,
    LayoutError,
    read_file_from_tar,
)


def _base(arch: str) -> bytes:
    """The base layer: uncompressed, with files that the top layer deletes or replaces."""
    return tar_bytes(
        [
            directory("etc"),
            file("etc/os-release", f"ID=base-{arch}\n".encode(), 0o644),
            file("etc/secret", b"hidden", 0o600),
            directory("usr"),
            directory("usr/lib"),
            file("usr/lib/old.so", b"old"),
            directory("opt"),
            file("opt/gone.txt", b"gone"),
            directory("usr/bin"),
            file("usr/bin/tool", b"base tool"),
            symlink("bin", "usr/bin"),
        ]
    )


def _top(arch: str, machine: int) -> bytes:
    """The top layer: gzip, with whiteouts, an opaque dir, symlinks and a hardlink."""
    return tar_bytes(
        [
            directory("app"),
            file("app/server", make_elf(machine)),
            hardlink("app/server-link", "app/server"),
            symlink("usr/local/bin/server", "/app/server"),
            symlink("app/rel", "../etc/os-release"),
            whiteout("etc/secret"),
            opaque("opt"),
            file("opt/new.txt", arch.encode()),
            file("usr/bin/tool", f"top tool {arch}".encode()),
        ],
        compress=True,
    )


@pytest.fixture
def layout_dir(tmp_path: Path) -> Path:
    root = tmp_path / "layout"
    builder = LayoutBuilder(root)
    amd = builder.image("linux/amd64", [_base("amd64"), _top("amd64", EM_X86_64)])
    arm = builder.image("linux/arm64/v8", [_base("arm64"), _top("arm64", EM_AARCH64)])
    builder.finish([amd, arm, builder.attestation(str(amd["digest"]))])
    return root


@pytest.fixture(params=["directory", "tar"])
def layout(request: pytest.FixtureRequest, layout_dir: Path, tmp_path: Path) -> ImageLayout:
    if request.param == "directory":
        return ImageLayout.open(layout_dir)
    return ImageLayout.open(tar_directory(layout_dir, tmp_path / "image.tar"))


def test_platforms_skip_attestations(layout: ImageLayout) -> None:
    platforms = [image.platform for image in layout.platforms()]
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    assert layout.index_digest is not None
    assert layout.index_digest.startswith("sha256:")
    amd = layout.platforms()[0]
    assert len(amd.layers) == 2
    assert len(amd.diff_ids) == 2
    assert amd.config["architecture"] == "amd64"
    assert amd.manifest_digest.startswith("sha256:")


def test_read_file_per_platform(layout: ImageLayout) -> None:
    assert read_elf(layout.read_file("linux/amd64", "/app/server")).machine_code == 62
    assert read_elf(layout.read_file("linux/arm64", "/app/server")).machine_code == 183
    assert layout.read_file("linux/arm64/v8", "/opt/new.txt") == b"arm64"


def test_upper_layer_wins_and_lower_layer_shows_through(layout: ImageLayout) -> None:
    assert layout.read_file("linux/amd64", "/usr/bin/tool") == b"top tool amd64"
    assert layout.read_file("linux/amd64", "/etc/os-release") == b"ID=base-amd64\n"
    assert layout.read_file("linux/amd64", "usr/lib/old.so") == b"old"


def test_whiteouts_hide(layout: ImageLayout) -> None:
    with pytest.raises(FileNotInImage, match="etc/secret"):
        layout.read_file("linux/amd64", "/etc/secret")
    with pytest.raises(FileNotInImage):
        layout.read_file("linux/amd64", "/opt/gone.txt")


def test_symlinks_and_hardlinks(layout: ImageLayout) -> None:
    server = layout.read_file("linux/arm64", "/app/server")
    assert layout.read_file("linux/arm64", "/usr/local/bin/server") == server
    assert layout.read_file("linux/arm64", "/app/server-link") == server
    assert layout.read_file("linux/arm64", "/app/rel") == b"ID=base-arm64\n"
    # An ancestor symlink in a lower layer: /bin -> usr/bin.
    assert layout.read_file("linux/arm64", "/bin/tool") == b"top tool arm64"


def test_missing_and_directory(layout: ImageLayout) -> None:
    with pytest.raises(FileNotInImage) as excinfo:
        layout.read_file("linux/amd64", "/nope")
    assert not excinfo.value.is_directory
    assert excinfo.value.platform == "linux/amd64"
    with pytest.raises(FileNotInImage, match="is a directory") as excinfo:
        layout.read_file("linux/amd64", "/app")
    assert excinfo.value.is_directory
    with pytest.raises(FileNotInImage, match="is a directory"):
        layout.read_file("linux/amd64", "/usr/local")


def test_unknown_platform(layout: ImageLayout) -> None:
    with pytest.raises(LayoutError, match="linux/s390x"):
        layout.read_file("linux/s390x", "/app/server")


def test_max_bytes(layout: ImageLayout) -> None:
    with pytest.raises(LayoutError, match="limit"):
        layout.read_file("linux/amd64", "/app/server", max_bytes=10)


def test_symlink_loop(tmp_path: Path) -> None:
    builder = LayoutBuilder(tmp_path)
    image = builder.image("linux/amd64", [tar_bytes([symlink("a", "b"), symlink("b", "/a")])])
    builder.finish([image])
    with pytest.raises(FileNotInImage, match="symbolic links"):
        ImageLayout.open(tmp_path).read_file("linux/amd64", "/a")


def test_docker_save_style_index_without_wrapper(tmp_path: Path) -> None:
    builder = LayoutBuilder(tmp_path)
    image = builder.image("linux/arm64", [tar_bytes([file("x", b"1")], compress=True)])
    assert builder.finish([image], wrap_in_index=False) is None
    layout = ImageLayout.open(tmp_path)
    assert layout.index_digest is None
    assert layout.read_file("linux/arm64", "x") == b"1"


def test_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"junk" * 300)
    with pytest.raises(LayoutError):
        ImageLayout.open(tmp_path / "junk.tar")
    with pytest.raises(LayoutError):
        ImageLayout.open(tmp_path)


def test_zstd_layer_without_zstd_support_is_a_clear_error(tmp_path: Path) -> None:
    builder = LayoutBuilder(tmp_path)
    image = builder.image("linux/amd64", [b"\x28\xb5\x2f\xfd" + b"\0" * 64])
    builder.finish([image])
    pytest.importorskip("orchestrator")  # keeps the test meaningful whether or not zstd exists
    try:
        import zstandard  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(LayoutError, match="zstd"):
            ImageLayout.open(tmp_path).read_file("linux/amd64", "/x")


def test_read_from_top_layer_is_fast(tmp_path: Path) -> None:
    big_base = tar_bytes([file(f"usr/share/f{i}", b"x" * 4096) for i in range(3000)], compress=True)
    builder = LayoutBuilder(tmp_path)
    image = builder.image("linux/amd64", [big_base, tar_bytes([file("app", make_elf())])])
    builder.finish([image])
    layout = ImageLayout.open(tmp_path)
    start = time.perf_counter()
    assert read_elf(layout.read_file("linux/amd64", "/app")).machine_code == 62
    assert time.perf_counter() - start < 0.05


def test_read_file_from_tar(tmp_path: Path) -> None:
    single = tar_bytes([file("server", b"binary")])  # `docker cp CID:/app/server -`
    assert read_file_from_tar(io.BytesIO(single), "/app/server") == b"binary"
    export = tar_bytes([directory("app"), file("app/server", b"real"), symlink("app/link", "server")])
    path = tmp_path / "export.tar"
    path.write_bytes(export)
    assert read_file_from_tar(path, "/app/server") == b"real"
    assert read_file_from_tar(str(path), "app/link") == b"real"
    with pytest.raises(FileNotInImage):
        read_file_from_tar(path, "/missing")
    with pytest.raises(FileNotInImage, match="is a directory"):
        read_file_from_tar(path, "/app")


def test_read_file_from_tar_stream() -> None:
    class Stream(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    data = tar_bytes([file("a", b"1"), file("app/server", b"2")], compress=True)
    assert read_file_from_tar(Stream(data), "/app/server") == b"2"
