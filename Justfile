# Developer recipes. `just` itself comes from PyPI's rust-just (installed into .venv by setup).
set shell := ["bash", "-euo", "pipefail", "-c"]

# set up .venv and the engine (idempotent)
setup:
    scripts/setup.sh

# the demo: build, verify and publish the example release for amd64 and arm64
demo:
    scripts/demo.sh

# the whole test suite (unit + engine integration tests)
test *ARGS:
    scripts/test.sh {{ARGS}}

# unit tests only (no engine)
unit:
    .venv/bin/pytest tests/unit -q

# ruff and mypy strict
lint:
    .venv/bin/ruff check orchestrator tests bench
    .venv/bin/mypy orchestrator

# benchmarks (BENCHMARKS.md says what each measures)
bench:
    .venv/bin/python bench/plan_scale.py
    .venv/bin/python bench/verify_elf.py
    .venv/bin/python bench/build_overhead.py

# the cold build benchmark (--no-cache: every service compiles Go from scratch; ~4 minutes)
bench-cold:
    .venv/bin/python bench/build_overhead.py --cold

engine-up:
    scripts/engine.sh up

engine-down:
    scripts/engine.sh down

engine-status:
    scripts/engine.sh status
