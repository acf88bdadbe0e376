"""benchmarks/attention_gpu.py without a GPU: its report, its refusal, and its exp-floor kernel
(run by Triton's interpreter). The timings themselves need a GPU (see benchmarks/README.md)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "attention_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("attention_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_report_table(bench):
    floor = bench.Timing("floor", 0.5, None, "1e9 exp2")
    timings = [bench.Timing("Triton", 1.5, 3.0), bench.Timing("CUDA", note="not run: no nvcc")]
    sweep = [{"impl": "cuda", "dtype": "fp16", "B": 1, "L": 49, "D": 4, "kv_same": True, "err": 1e-4, "nan": False},
             {"impl": "cuda", "dtype": "fp32", "B": 7, "L": 50, "D": 5, "kv_same": False, "err": math.inf, "nan": True}]
    text = bench.format_report({"device": "GPU X"}, {"B": 224, "L": 3136, "D": 4, "dtype": "fp16", "scale": 0.5},
                               timings, floor, sweep)
    assert "| Triton | 1.500 | 3.00 | 3.0 |" in text
    assert "| CUDA | — | — | — | not run: no nvcc |" in text
    assert "| cuda | fp16 | 1 | 1.00e-04 | 2e-03 | 0 | yes |" in text
    assert "| cuda | fp32 | 1 | inf | 1e-05 | 1 | NO |" in text
    assert "B=7 L=50 D=5" in text  # failing cases are listed
    assert not bench.sweep_passed(sweep)
    figures = json.loads(json.dumps(bench.report_figures({"device": "GPU X"}, {"B": 1}, timings, floor, sweep),
                                    allow_nan=False))  # the JSON gpu_check reads: no Infinity in it
    assert figures["timings"][0] == {"name": "Triton", "ms": 1.5, "peak_mib": 3.0, "note": ""}
    assert [(r["dtype"], r["max_rel_error"], r["nan_left"], r["pass"]) for r in figures["sweep"]] == [
        ("fp32", None, 1, False), ("fp16", 1e-4, 0, True)]
    assert figures["sweep_passed"] is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run")
def test_refuses_without_gpu(bench, tmp_path):
    assert bench.main(["--skip-sweep", "--out", str(tmp_path / "r.md")]) == 2
    assert not (tmp_path / "r.md").exists()


def test_exp_floor_kernel_counts_and_computes():
    pytest.importorskip("triton")
    code = (
        "import json, sys, numpy as np, torch\n"
        f"sys.path.insert(0, {str(SCRIPT.parent)!r})\n"
        "import attention_gpu as ag\n"
        "run, count = ag.exp_floor(100, 70, torch.device('cpu'))\n"
        "out = run().numpy()\n"
        "rows = np.arange(128)[:, None] * 1e-7\n"
        "ref = sum(np.exp2(rows - np.arange(64)[None, :] * 1e-3 - s * 1e-3).sum(1) for s in (0, 64))\n"
        "print(json.dumps({'count': count, 'err': float(np.abs(out - ref).max() / ref.max())}))\n"
    )
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["count"] == 128 * 128  # 100 rows -> 2 programs of 64, 70 keys -> 2 blocks of 64
    assert result["err"] < 1e-5
