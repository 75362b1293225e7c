#!/usr/bin/env bash
# Set up everything orch needs on a fresh machine of this kind: the Python environment (.venv with orch
# and its dev tools) and the real engine (Docker 26 + buildx + QEMU + a registry on 127.0.0.1:5000,
# seeded with the stand-in base images). Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.orch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[setup] installing orch and its dev tools into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
scripts/engine.sh up
echo "[setup] ready in $(( $(date +%s) - start ))s"
