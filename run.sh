#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh main   build the demo model's deployable artefacts (the main job, on the embedded default)
#   ./run.sh test   run the test suite
# Both install what the project needs first (torch pinned to the local CPU wheel).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

install() {
  # torch first and pinned, so nothing later resolves an unpinned torch.
  "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q -r requirements.txt
}

case "${1:-}" in
  main)
    shift
    install
    exec "$PY" -m tsi.info "$@"
    ;;
  test)
    shift
    install
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh main|test [args...]" >&2
    exit 2
    ;;
esac
