#!/usr/bin/env bash
# The virtual environment of the test Triton server (deploy/triton/pytriton_serve.py, started by
# benchmarks/common/triton_server.py): PyPI's nvidia-pytriton bundles a tritonserver binary whose
# Python backend stub links the system Python's libpython, and pytriton needs numpy<2, so it lives
# apart from the project's environment.
# Created once and reused: ${TSI_PYTRITON_VENV:-~/.cache/tsi-edge/pytriton-venv}; prints its path.
set -euo pipefail
VENV=${TSI_PYTRITON_VENV:-$HOME/.cache/tsi-edge/pytriton-venv}
PY=${TSI_PYTRITON_PYTHON:-/usr/bin/python3.11}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pytriton, onnxruntime" 2>/dev/null; then
  rm -rf "$VENV.tmp"
  "$PY" -m venv "$VENV.tmp"
  "$VENV.tmp/bin/python" -m pip install -q "nvidia-pytriton==0.7.0" "numpy<2" "onnxruntime<1.24" >&2
  rm -rf "$VENV"
  mv "$VENV.tmp" "$VENV"
fi
echo "$VENV"
