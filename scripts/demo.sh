#!/usr/bin/env bash
# The demo, from a fresh machine: set up the engine and registry, seed the stand-in base images, build
# the example release (services.yaml) for linux/amd64 and linux/arm64, verify every image on both
# architectures, publish it to the local registry, and audit the policy exceptions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
set -x
orch doctor
orch lock
orch build --push --report out/
set +x
echo
echo "== orch policy audit"
orch policy audit || true
echo
echo "report: out/report.json, out/junit.xml, out/summary.md, logs under out/logs/"
