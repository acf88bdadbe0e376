"""Every benchmark CLI of setup.cfg's console scripts: its ``--help``, a bad argument (exit 2, one
error line, no traceback), and a run at its smallest setting where that is short. The smallest runs
of the CLIs not run here are elsewhere: ``tsi-bench`` and ``tsi-bench-readme`` (suite/
test_accuracy_latency.py), ``-online``, ``-online-sequences``, ``-online-streams``,
``-crop-coverage``, ``-camera-share``, ``-recipe-table``, ``-synthetic`` (its tables; training is tsi.train's tests) in this folder, ``-int8`` in tests/calib/,
``-attention-gpu`` (GPU only: its refusal without one) in tests/kernels/, ``-cpu-int8`` in
tests/export/test_cpu_int8.py, and ``tsi-gpu-check`` (its ``--dry-run``) in test_gpu_check.py;
``tsi-bench-triton``'s smallest run is here (it starts a Triton server)."""

from __future__ import annotations

import configparser
import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# script -> a bad argument list (each fails at the CLI's own check where it has one)
BAD_ARGS = {
    "tsi-bench": ["--no-r50", "--repeats", "0", "--out", "{tmp}"],
    "tsi-bench-readme": ["--json", "no/such/report.json"],
    "tsi-bench-int8": ["--checkpoint", "m.pt", "--data", "d", "--calib-method", "no-such-method"],
    "tsi-bench-synthetic": ["--seed-runs", "a", "b"],  # --seed-runs needs --table-only
    "tsi-bench-attention-gpu": ["--dtype", "fp8"],
    "tsi-bench-fp16": ["--onnx", "no/such/graph.onnx"],
    "tsi-bench-cpu-int8": ["--dir", "no/such/folder"],
    "tsi-bench-cpu-attention": ["--calls", "0"],
    "tsi-bench-cpu-backends": ["--rounds", "0"],
    "tsi-bench-multistream": ["--streams", "0"],
    "tsi-bench-serve-clients": ["--clients", "0"],
    "tsi-bench-triton": ["--streams", "0"],
    "tsi-bench-online": ["--frames", "eight"],
    "tsi-bench-online-sequences": ["--archs", "tsi_r18"],  # no --runs
    "tsi-bench-online-streams": ["--streams", "1"],  # no batch
    "tsi-bench-data-loading": ["--videos", "no/such/folder", "--out", "{tmp}"],
    "tsi-bench-crop-coverage": ["--clips", "0"],
    "tsi-bench-camera-share": ["--data", "d", "--videos", "0"],
    "tsi-bench-unseen-motion": ["--out", "{tmp}", "--train", "0"],
    "tsi-bench-recipe-table": ["--results", "no/such/folder"],
    "tsi-gpu-check": ["--parts", "no-such-part"],
}


def bench_scripts() -> dict[str, str]:
    """{console script: "module:function"} of setup.cfg's benchmark scripts."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [x.split("=") for x in cfg["options.entry_points"]["console_scripts"].strip().splitlines()]
    return {k.strip(): v.strip() for k, v in lines if v.strip().startswith("benchmarks.")}


def entry(script: str):
    module, func = bench_scripts()[script].split(":")
    return getattr(importlib.import_module(module), func)


def call(main, argv: list[str]) -> int:
    """The CLI's exit status as a shell would see it (``SystemExit("text")`` exits 1)."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) or e.code is None else 1
    return rc or 0


def test_every_benchmark_script_is_covered_and_every_study_has_one():
    scripts = bench_scripts()
    assert set(scripts) == set(BAD_ARGS)
    for script, target in scripts.items():
        assert callable(entry(script)), script
        source = (REPO / (target.split(":")[0].replace(".", "/") + ".py")).read_text()
        assert 'if __name__ == "__main__":' in source, f"python -m {target.split(':')[0]} does nothing"
    # each module beside suite/ and common/ is a study with its console script
    studies = {f"benchmarks.{p.stem}" for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__"}
    assert studies <= {v.split(":")[0] for v in scripts.values()}


@pytest.mark.parametrize("script", sorted(BAD_ARGS))
def test_help(script, capsys):
    assert call(entry(script), ["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage:")


@pytest.mark.parametrize("script", sorted(BAD_ARGS))
def test_bad_argument_exits_2_with_one_line(script, tmp_path, capsys, caplog):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in BAD_ARGS[script]]
    with caplog.at_level(logging.ERROR):
        assert call(entry(script), argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "error" in x.lower()] + [r.getMessage() for r in caplog.records
                                                                     if r.levelno >= logging.ERROR]
    assert "Traceback" not in err and len(lines) == 1, (err, caplog.text)
    assert "\n" not in lines[0]


def test_multistream_default_stride(tmp_path):
    """`python -m benchmarks.multistream` without --stride: the live runtime's own per-mode default
    (no `--stride None`), the results under --out, nothing in benchmarks/results/."""
    out = tmp_path / "res" / "multistream"
    results = sorted((REPO / "benchmarks" / "results").iterdir())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "benchmarks.multistream", "--streams", "1", "--seconds", "1", "--repeats", "1",
           "--frames", "48", "--out", str(out), "--work", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["meta"]["stride"] is None
    offline, realtime = report["runs"]
    assert not offline["realtime"] and realtime["realtime"]
    # 48 frames, span 32, the clip model's default stride of 4: a window at frame 32, 36, ..., 48
    assert offline["frames"] == 48 and offline["windows"] == 5
    assert "stride the runtime default" in out.with_suffix(".md").read_text()
    assert sorted((REPO / "benchmarks" / "results").iterdir()) == results
    assert not (tmp_path / "benchmarks").exists()


def test_fp16_converter_smallest_run(tiny_onnx, tmp_path):
    path, _, _ = tiny_onnx
    out = tmp_path / "fp16.md"
    assert entry("tsi-bench-fp16")(["--onnx", str(path), "--random", "1", "--videos", "0", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| `calib.fp16` | `onnxruntime alone` |" in text and "1 random clips" in text


def test_data_loading_smallest_run(tmp_path):
    from tests.export.helpers import write_video_folder

    write_video_folder(tmp_path / "videos" / "train", per_class=2)
    table = tmp_path / "dl.md"
    argv = ["--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "frames"), "--workers", "0",
            "--batch", "2", "--clips", "2", "--steps", "1", "--extract-workers", "1", "--table", str(table)]
    assert entry("tsi-bench-data-loading")(argv) == 0
    text = table.read_text()
    r = json.loads(table.with_suffix(".json").read_text())
    from benchmarks.common.demo_geometry import demo_card

    demo = demo_card()  # the demo model's geometry, read from its card
    assert r["card"]["frames"] == demo.frames and r["card"]["input_size"] == demo.input_size
    assert len(r["rows"]) == 3 and all(x["train_steps"] == 1 for x in r["rows"])
    assert f"short side {demo.resize_short}" in text


def test_triton_serving_smallest_run(tmp_path):
    """`tsi-bench-triton` on the tiny colour model: one stream each way through a real Triton
    server (skipped where deploy/triton/pytriton_venv.sh cannot make its venv)."""
    from benchmarks.common.triton_server import pytriton_python
    from tests.runtime.helpers import make_card, make_onnx

    if pytriton_python()[0] is None:
        pytest.skip(pytriton_python()[1])
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    out = tmp_path / "triton"
    assert entry("tsi-bench-triton")(["--model", str(model), "--streams", "1", "2", "--frames", "16",
                                      "--repeats", "1", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["runs"]
    per_stream = "Triton, a process per stream"
    assert [(r["streams"], r["side"]) for r in rows] == [(1, "in-process"), (1, "Triton"), (2, "in-process"),
                                                          (2, "Triton"), (2, per_stream)]
    assert all(r["windows"] == 3 * r["streams"] for r in rows)  # 16 frames, span 8, stride 4: frames 7, 11, 15
    served = [r for r in rows if r["side"] != "in-process"]
    assert [r["clips_per_request"] for r in served] == [1.0, 2.0, 1.0]
    assert [r["requests"] for r in served] == [3, 3, 6]
    assert "| 2 | Triton, a process per stream |" in out.with_suffix(".md").read_text()
