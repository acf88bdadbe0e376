"""The Polygraphy check the builder prints (export.polygraphy_check): run here as printed, with
onnxruntime in place of TensorRT, on the held-out calibration clips of a real build. It passes at the
builder's tolerances and fails at a tighter one."""

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import export.build_engine as be
from export.polygraphy_check import TRT_FLAGS
from tests.export.test_build_engine import calib_dir  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[2]
POLYGRAPHY = shutil.which("polygraphy") or str(Path(sys.executable).with_name("polygraphy"))


@pytest.fixture(scope="module")
def printed(tmp_path_factory, tiny_ckpt, calib_dir):  # noqa: F811
    """The Polygraphy lines of a --fp16 --int8 build's report, the first (FP32's outputs saved) run."""
    out = tmp_path_factory.mktemp("pg") / "out"
    logger = logging.getLogger("export.build_engine")
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        assert be.main([str(a) for a in ["--checkpoint", tiny_ckpt, "--out", out, "--fp16", "--int8",
                                         "--calib-dir", calib_dir, "--calib-method", "minmax"]]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [line.strip() for line in records if "polygraphy run" in line]
    assert lines and "--onnxrt --data-loader-script export/polygraphy_check.py --save-outputs" in lines[0]
    done = run(on_onnxruntime(lines[0]))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return lines


def on_onnxruntime(line: str) -> str:
    command = line.split("   # ")[0]
    for flags, _ in TRT_FLAGS.values():
        command = command.replace(flags, "--onnxrt")
    return command.replace("polygraphy run", f"{POLYGRAPHY} run", 1)


def run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_printed_commands_pass_at_the_builders_tolerances(printed):
    assert len(printed) == 3  # FP32 outputs saved, then FP16 and INT8 compared with them
    assert "--trt --fp16 " in printed[1] and ".fp16.onnx" in printed[1]
    assert "--trt --int8 --fp16 " in printed[2] and ".int8.qdq.onnx" in printed[2]
    for line in printed[1:]:
        done = run(on_onnxruntime(line))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "PASSED" in done.stdout + done.stderr


def test_a_tighter_tolerance_fails(printed):
    tight = re.sub(r"--atol \S+", "--atol 1e-9", on_onnxruntime(printed[2]))
    done = run(tight)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
