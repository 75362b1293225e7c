"""orch's own overhead on a build of the example project, verification's share, and the no-op rebuild.

One run, side by side, on a copy of the example project pushing to its own registry namespace:
  1. a first build, then a change to a source file every service compiles (src/internal/version), and
     `orch build --jobs 1 --report R1`: every service recompiles for both platforms with a warm Go
     build cache, the way a release build runs on a build machine (--jobs 1 keeps times additive),
  2. `orch build --report R2` right after: everything up to date (the no-op rebuild).
From R1's report.json: buildx time = the build step durations; verify time = the verify durations;
orch overhead = wall - buildx - verify.

    .venv/bin/python bench/build_overhead.py           # warm: Go build cache and BuildKit cache warm
    .venv/bin/python bench/build_overhead.py --cold    # cold: --no-cache (BuildKit cache and Go cache mount
                                                       # bypassed: every service compiles Go from scratch,
                                                       # as the first build on a fresh machine does)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = os.environ.get("ORCH_REGISTRY", "127.0.0.1:5000")


def orch(cwd: Path, *args: str) -> float:
    start = time.monotonic()
    env = {**os.environ, "ORCH_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"orch {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        work = Path(tmp)
        for part in ("services.yaml", "policy", "dockerfiles", "src"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / part)
        services = work / "services.yaml"
        services.write_text(
            services.read_text().replace(
                f"registry: {REGISTRY}/kubernaut", f"registry: {REGISTRY}/bench-{uuid.uuid4().hex[:6]}"
            )
        )
        orch(work, "lock")
        orch(work, "build", "--jobs", "2", "--report", "r0")  # everything built once (warm Go cache)
        # a release build: a shared source file changes, so every service really recompiles its Go
        # code for both platforms (the Go build cache stays warm, as on any build machine)
        shared = work / "src" / "internal" / "version" / "version.go"
        shared.write_text(shared.read_text() + "\n// bench: touched to rebuild every service\n")
        mode = ["--no-cache"] if "--cold" in sys.argv else []
        wall = orch(work, "build", "--jobs", "1", *mode, "--report", "r1")
        report = json.loads((work / "r1" / "report.json").read_text())
        build = {r["service"]: r["duration_s"] for r in report["results"] if r["step"] == "build"}
        # the index row of each service carries its verification's wall time (platforms side by side)
        verify = {
            r["service"]: r["duration_s"]
            for r in report["results"]
            if r["step"] == "verify" and r["platform"] == "all" and r["check"] == "index"
        }
        buildx_s = sum(build.values())
        verify_s = sum(verify.values())
        overhead = wall - buildx_s - verify_s
        noop = orch(work, "build", "--report", "r2")
        noop_rows = json.loads((work / "r2" / "report.json").read_text())["results"]
        assert all(r["status"] == "up-to-date" for r in noop_rows if r["step"] == "build")
    services_n = len(build)
    kind = "cold (--no-cache)" if "--cold" in sys.argv else "warm (Go build cache warm)"
    print(f"example project: {services_n} services x 2 platforms, one run, {kind}")
    print()
    print("| measure | seconds | ratio | floor |")
    print("|---|---:|---:|---|")
    print(f"| `orch build --jobs 1 {' '.join(mode)}` after a shared source change, wall | {wall:.2f} | 1.00 | |")
    print(f"| time inside buildx | {buildx_s:.2f} | {buildx_s / wall:.2f} of wall | |")
    print(
        f"| verification (all checks, both platforms) | {verify_s:.2f} | {verify_s / buildx_s:.2f} of build | <= 0.25 |"
    )
    print(f"| orch overhead (wall - buildx - verify) | {overhead:.2f} | {overhead / wall:.3f} of wall | < 0.10 |")
    print(f"| no-op rebuild (`orch build`, all up to date) | {noop:.2f} | {noop / wall:.3f} of build | < 3 s |")


if __name__ == "__main__":
    main()
