"""Every runtime/ module imports with torch, tsi, export and calib blocked (a Jetson has none of
them), and heavy packages only lazily. (tests/test_layers.py reads the same rule from the sources.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED_IMPORTS = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "tsi", "export", "calib"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import runtime
    names = [m.name for m in pkgutil.walk_packages(runtime.__path__, "runtime.")]
    for name in names:
        importlib.import_module(name)
    assert {"runtime.trt_version", "runtime.common.errors", "runtime.backends.torch_dev"} <= set(names), names
    heavy = [m for m in ("torch", "tsi", "export", "calib", "onnxruntime", "onnx", "openvino", "tensorrt", "pycuda",
                         "cuda")
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


def test_runtime_imports_without_torch_tsi_export_or_calib(tmp_path):
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, str(tmp_path / "m.pt")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
