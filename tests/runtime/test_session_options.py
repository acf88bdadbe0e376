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
    assert opts.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert session_options().intra_op_num_threads == 0  # onnxruntime's own choice
