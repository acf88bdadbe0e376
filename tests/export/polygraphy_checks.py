"""The Polygraphy check the builder prints (export.polygraphy_check), run here as printed with
onnxruntime in place of TensorRT, on the held-out calibration clips of a real build: it passes at the
builder's tolerances and fails at a tighter one. Called by test_build_engine's end-to-end build (one
build serves both)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from export.polygraphy_check import ENV_CALIB_DIR, TRT_FLAGS

REPO = Path(__file__).resolve().parents[2]
POLYGRAPHY = shutil.which("polygraphy") or str(Path(sys.executable).with_name("polygraphy"))


def printed_commands(report: str) -> list[str]:
    """The ``polygraphy run`` lines of a build's report (log prefixes cut)."""
    return [ENV_CALIB_DIR + line.split(ENV_CALIB_DIR, 1)[1] for line in report.splitlines() if "polygraphy run" in line]


def on_onnxruntime(line: str) -> str:
    command = line.split("   # ")[0]
    for flags, _ in TRT_FLAGS.values():
        command = command.replace(flags, "--onnxrt")
    return command.replace("polygraphy run", f"{POLYGRAPHY} run", 1)


def run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, timeout=300)


def check_printed_commands(report: str) -> None:
    printed = printed_commands(report)
    assert len(printed) == 3, printed  # FP32 outputs saved, then FP16 and INT8 compared with them
    assert "--onnxrt --data-loader-script export/polygraphy_check.py --save-outputs" in printed[0]
    assert "--trt --fp16 " in printed[1] and ".fp16.onnx" in printed[1]
    assert "--trt --int8 --fp16 " in printed[2] and ".int8.qdq.onnx" in printed[2]
    for line in printed:
        done = run(on_onnxruntime(line))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "PASSED" in done.stdout + done.stderr
    done = run(re.sub(r"--atol \S+", "--atol 1e-9", on_onnxruntime(printed[2])))
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr  # a tighter tolerance fails
