"""runtime/ must import without torch and tsi (a Jetson has neither), and heavy packages lazily."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED_IMPORTS = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "tsi"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import runtime.capture, runtime.window, runtime.live, runtime.backends, runtime.smoothing, runtime.events
    import runtime.overlay, runtime.gstreamer, runtime.outputs, runtime.latency
    import runtime.backends.onnxruntime_backend, runtime.backends.tensorrt_backend
    import runtime.backends.cuda_api, runtime.backends.torch_dev
    heavy = [m for m in ("torch", "tsi", "onnxruntime", "onnx", "tensorrt", "pycuda", "cuda")
             if m in sys.modules]
    assert not heavy, heavy

    # the .pt backend says what it needs instead of failing obscurely
    from runtime.backends import BackendError, open_backend
    open(sys.argv[1], "wb").close()
    try:
        open_backend(sys.argv[1])
    except BackendError as e:
        assert "PyTorch" in str(e) and "tsi" in str(e), e
    else:
        raise AssertionError("loading a .pt without torch did not fail")
    print("ok")
    """
)


def test_runtime_imports_without_torch_or_tsi(tmp_path):
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, str(tmp_path / "m.pt")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_no_torch_or_tsi_import_in_runtime_sources():
    """Only torch_dev.py may mention them, and only inside a function."""
    for path in (ROOT / "runtime").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import torch", "from torch", "import tsi", "from tsi")):
                assert path.name == "torch_dev.py" and line.startswith(" "), (path, line)
