"""Every onnxruntime session of the project takes its options from one place
(``runtime.backends.onnxruntime_backend.session_options``)."""

import ast
from pathlib import Path

import onnxruntime as ort

from runtime.backends.onnxruntime_backend import session_options

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tsi", "export", "calib", "runtime", "benchmarks")
HOME = "runtime/backends/onnxruntime_backend.py"


def calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == name]


def test_session_options_are_made_in_one_place_and_every_session_takes_them():
    made, bare = [], []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            made += [f"{rel}:{c.lineno}" for c in calls(path, "SessionOptions")]
            bare += [f"{rel}:{c.lineno}" for c in calls(path, "InferenceSession") if len(c.args) < 2
                     and not any(k.arg == "sess_options" for k in c.keywords)]
    assert made == [f"{HOME}:{calls(ROOT / HOME, 'SessionOptions')[0].lineno}"], made
    assert bare == [], f"sessions opened without session_options(): {bare}"


def test_the_options():
    opts = session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.log_severity_level == 3
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL



def test_a_session_leaves_the_process_with_subnormal_numbers():
    """Flushing subnormals (session.set_denormal_as_zero) sets the calling thread's floating-point
    mode for everything after it; hypothesis then refuses to run (how the suite found it)."""
    import numpy as np

    from export.parity import ort_session
    from runtime.assets import DEMO_ONNX

    sess = ort_session(DEMO_ONNX)
    inp = sess.get_inputs()[0]
    sess.run(None, {inp.name: np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)})
    tiny = np.float32(1e-40)  # subnormal in float32
    assert tiny * np.float32(1.0) > 0 and np.nextafter(np.float32(0), np.float32(1)) > 0
    assert session_options().intra_op_num_threads == 0  # onnxruntime's own choice
