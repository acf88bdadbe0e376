#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh main   the main job on the embedded default: build the demo model's deployable
#                   artefacts, write a sample clip, recognise it with the torch-free live runtime
#   ./run.sh test   run the test suite
# Both install the project first (`pip install -e .[dev]`, torch pinned to the local CPU wheel).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

install() {
  # torch first and pinned, so nothing later resolves an unpinned torch (setup.cfg leaves it
  # unpinned for users with their own CUDA build); then this project, editable, with every extra
  # the main job and the tests use (setup.cfg [options.extras_require] dev).
  "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q -e ".[dev]"
}

case "${1:-}" in
  main)
    shift
    install
    # 1. checkpoint -> ONNX (standard + plugin), FP16 and INT8 Q/DQ graphs, calibration, checks
    #    (and the engine itself where TensorRT is installed)
    "$PY" export/build_engine.py --fp16 --int8 "$@"
    # 2. a sample clip of four consecutive actions, with its ground truth beside it
    "$PY" -m tsi.data.synthetic --out artifacts/demo/sample.mp4 --force \
      --sequence move_right approach disappear no_motion move_up recede --frames 48
    # 3. recognise it with the live runtime (onnxruntime backend), headless
    "$PY" -m runtime.live --model artifacts/demo/tsi_demo.onnx --source artifacts/demo/sample.mp4 \
      --headless --no-realtime --out-jsonl artifacts/demo/actions.jsonl \
      --out-video artifacts/demo/annotated.mp4
    # 4. what it saw, against the clip's ground truth
    "$PY" -m runtime.events artifacts/demo/actions.jsonl --truth artifacts/demo/sample.json --lag 16
    ;;
  test)
    shift
    install
    # one worker per CPU core (TSI_TEST_WORKERS to choose, 0 for none); a test file's tests stay in
    # one worker, so its module fixtures are built once
    exec "$PY" -m pytest -n "${TSI_TEST_WORKERS:-auto}" --dist loadfile "$@"
    ;;
  *)
    echo "usage: ./run.sh main|test [args...]" >&2
    exit 2
    ;;
esac
