"""How `orch plan --json` scales: a generated 2,000-service project, timed as the user runs it.

Generates the project into a temporary directory (about 20 levels deep, ~3 dependencies per
service, a tiny Dockerfile per service, one shared build context, a policy with a runtime and one Go
builder), then times `orch -f <dir>/services.yaml plan --json` and `orch --help` as subprocesses
and prints a Markdown table against the floors. When plan misses its floor (or with --profile) it
runs plan once under cProfile and prints where the time goes.

    .venv/bin/python bench/plan_scale.py [--services 2000] [--levels 20] [--deps 3] [--profile]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORCH = ROOT / ".venv" / "bin" / "orch"
PYTHON = ROOT / ".venv" / "bin" / "python"

PLAN_FLOOR = 1.5  # seconds, median of `orch plan --json` on the generated project
HELP_FLOOR = 0.4  # seconds, median of `orch --help`

DOCKERFILE = """\
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
FROM --platform=$BUILDPLATFORM ${{BUILDER_IMAGE}} AS builder
WORKDIR /src
COPY go.mod main.go ./
RUN go build -o /out/{name} .
FROM ${{RUNTIME_IMAGE}}
COPY --from=builder /out/{name} /usr/local/bin/{name}
"""

POLICY = """\
version: 1
tiers:
  - name: official
    registries: ["docker.io/library/*"]
runtime: gcr.io/distroless/static-debian12:nonroot
builders:
  go:
    - image: golang:1.25
"""


def generate(root: Path, *, services: int, levels: int, deps: int, seed: int = 1) -> Path:
    """Write the project; every service past level 0 depends on one service of the level just
    before it (so the graph is `levels` deep) and up to `deps - 1` more from any earlier level."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible graph, not a secret
    names = [f"svc-{i:04d}" for i in range(services)]
    level_of = {name: i * levels // services for i, name in enumerate(names)}
    by_level: list[list[str]] = [[] for _ in range(levels)]
    for name in names:
        by_level[level_of[name]].append(name)

    (root / "ctx").mkdir(parents=True)
    (root / "ctx" / "go.mod").write_text("module example.com/bench\n\ngo 1.25\n")
    (root / "ctx" / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "policy").mkdir()
    (root / "policy" / "policy.yaml").write_text(POLICY)
    (root / "dockerfiles").mkdir()

    lines = [
        "version: 1",
        "project: bench",
        "registry: 127.0.0.1:5000/bench",
        "platforms: [linux/amd64, linux/arm64]",
        "services:",
    ]
    for name in names:
        level = level_of[name]
        chosen: list[str] = []
        if level > 0:
            chosen.append(rng.choice(by_level[level - 1]))
            earlier = [n for lvl in by_level[:level] for n in lvl]
            while len(chosen) < min(deps, len(earlier)):
                pick = rng.choice(earlier)
                if pick not in chosen:
                    chosen.append(pick)
        (root / "dockerfiles" / f"{name}.Dockerfile").write_text(DOCKERFILE.format(name=name))
        lines += [
            f"  {name}:",
            f"    dockerfile: dockerfiles/{name}.Dockerfile",
            "    context: ctx",
            "    toolchain: {name: go, version: '>=1.24'}",
        ]
        if chosen:
            lines.append(f"    depends_on: [{', '.join(sorted(chosen))}]")
    path = root / "services.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(argv: Sequence[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return times


def profile(path: Path, top: int) -> str:
    """One plan run under cProfile, sorted by cumulative time (the first `top` rows)."""
    argv = [str(PYTHON), "-m", "cProfile", "-s", "cumtime", "-m", "orchestrator"]
    argv += ["-f", str(path), "plan", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    out = proc.stdout
    start = out.find("   Ordered by:")
    report = out[start:] if start >= 0 else out
    return "\n".join(report.splitlines()[: top + 4])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--deps", type=int, default=3)
    parser.add_argument("--plan-runs", type=int, default=5)
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="profile plan even within its floor")
    parser.add_argument("--top", type=int, default=35, help="profile rows to print")
    parser.add_argument("--keep", type=Path, help="generate here (kept) instead of a temp dir")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        root = args.keep or Path(tmp)
        started = time.perf_counter()
        path = generate(root, services=args.services, levels=args.levels, deps=args.deps)
        generated = time.perf_counter() - started

        plan_argv = [str(ORCH), "-f", str(path), "plan", "--json"]
        check = subprocess.run(plan_argv, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            sys.exit(f"orch plan exited {check.returncode}:\n{check.stderr}")
        plan = json.loads(check.stdout)
        edges = sum(len(s["depends_on"]) for s in plan["services"])
        print(
            f"project: {len(plan['services'])} services, {edges} edges, "
            f"{len(plan['waves'])} waves, plan JSON {len(check.stdout) / 1e6:.1f} MB "
            f"(generated in {generated:.2f}s)\n"
        )

        rows = [
            ("`orch plan --json`", timed(plan_argv, args.plan_runs), PLAN_FLOOR),
            ("`orch --help`", timed([str(ORCH), "--help"], args.help_runs), HELP_FLOOR),
        ]
        print("| command | runs | min (s) | median (s) | floor (s) | median / floor | |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for label, times, floor in rows:
            median = statistics.median(times)
            verdict = "ok" if median < floor else "**over**"
            print(
                f"| {label} | {len(times)} | {min(times):.3f} | {median:.3f} | {floor:.1f} "
                f"| {median / floor:.2f} | {verdict} |"
            )
        plan_median = statistics.median(rows[0][1])
        if args.profile or plan_median >= PLAN_FLOOR:
            print(f"\ncProfile of one `orch plan --json` (top {args.top} by cumulative time):\n")
            print("```")
            print(profile(path, args.top))
            print("```")
        over = [label for label, times, floor in rows if statistics.median(times) >= floor]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
