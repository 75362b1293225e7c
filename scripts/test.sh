#!/usr/bin/env bash
# Set up everything, then run the whole test suite: unit tests (pure, no processes) and integration
# tests marked `engine` that build, run, push and inspect for real. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
status=0
.venv/bin/python -m pytest -p no:cacheprovider "${@:-tests}" || status=$?
if [ "$status" -eq 5 ]; then
    echo "[test] pytest collected no tests: that is a failure here" >&2
fi
exit "$status"
