"""``python -m benchmarks.gpu_check`` without a GPU: the dry run's plan (every part, and why each
GPU part cannot run here), a bad ``--parts``, a part that raises (recorded, and the next part runs),
the markdown rendered from the JSON, and the backend comparison the onnxruntime and TensorRT parts
share (on two CPU sessions). The GPU parts themselves run only on a GPU."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks import gpu_check
from benchmarks.common import gpu_parts
from benchmarks.common.gpu_measure import compare_backends
from benchmarks.common.machine import tensorrt_status

NO_CUDA = "no CUDA device: torch.cuda.is_available() is False"


def read(out):
    return json.loads(out.with_suffix(".json").read_text())


def test_dry_run_plans_every_part_and_says_why_it_cannot_run(tmp_path, capsys):
    out = tmp_path / "plan.md"
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 0
    report = read(out)
    assert report["dry_run"] and report["command"] == f"python -m benchmarks.gpu_check --dry-run --out {out}"
    assert [p["name"] for p in report["parts"]] == list(gpu_parts.PARTS)
    why = {p["name"]: (p["status"], p["reason"]) for p in report["parts"]}
    assert why.pop("environment") == ("can run", None)
    if torch.cuda.is_available():  # on a GPU: the PyTorch parts can run
        assert why["throughput"] == why["train"] == ("can run", None)
    else:
        assert all(status == "cannot run here" and reason.startswith(NO_CUDA) for status, reason in why.values()), why
    if not tensorrt_status()[0]:
        assert "TensorRT absent" in why["tensorrt"][1]
    assert all(p["figures"] is None and p["elapsed_s"] is None for p in report["parts"])  # nothing ran
    assert sum(p["budget_s"] for p in report["parts"]) == pytest.approx(gpu_check.DEFAULT_BUDGET_S, abs=0.5)
    text = out.read_text()
    assert capsys.readouterr().out == text == gpu_check.render(report)  # printed, written, from the JSON
    assert "nothing was measured" in text and f"`{report['command']}`" in text
    for p in report["parts"]:
        assert f"| {p['name']} | " in text and (p["reason"] is None or p["reason"] in text)


@pytest.mark.parametrize("argv, says", [
    (["--parts", "throughput", "warp-drive"], "unknown part(s) warp-drive; the parts: environment, throughput"),
    (["--budget-s", "0"], "--budget-s must be > 0"),
    (["--iters", "0"], "--iters >= 1"),
])
def test_bad_option_is_one_error_line(argv, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.main(argv + ["--out", str(tmp_path / "r.md")])
    assert e.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(errors) == 1 and says in errors[0], errors
    assert not list(tmp_path.iterdir())


def test_a_part_that_raises_is_recorded_and_the_next_part_runs(tmp_path, monkeypatch):
    seen = []

    def boom(ctx):
        raise RuntimeError("the GPU caught fire\nand a second line")

    def sweep_out_of_bounds(ctx):
        raise gpu_parts.PartFailed("the correctness sweep failed", {"exit": 1, "sweep_passed": False})

    def fine(ctx):
        seen.append(ctx.left())
        return {"note": "ran", "rows": [{"batch": 1, "clips_per_s": 12.5}, {"batch": 32, "clips_per_s": None}]}

    def stub(name, **changes):
        monkeypatch.setitem(gpu_parts.PARTS, name, replace(gpu_parts.PARTS[name], **changes))

    stub("throughput", check=lambda: None, run=boom)
    stub("attention", check=lambda: None, run=sweep_out_of_bounds)
    stub("train", check=lambda: "not here: stubbed")
    stub("onnxruntime", check=lambda: None, run=fine)
    out = tmp_path / "r.md"
    argv = ["--parts", "onnxruntime", "train", "attention", "throughput", "--budget-s", "60", "--out", str(out)]
    assert gpu_check.main(argv) == 1  # a part failed
    report = read(out)
    parts = {p["name"]: p for p in report["parts"]}
    assert list(parts) == ["throughput", "attention", "train", "onnxruntime"]  # the parts' order, not argv's
    assert (parts["throughput"]["status"], parts["throughput"]["reason"]) == ("failed", "RuntimeError: the GPU caught fire")
    assert parts["attention"]["status"] == "failed" and parts["attention"]["figures"] == {"exit": 1, "sweep_passed": False}
    assert (parts["train"]["status"], parts["train"]["reason"], parts["train"]["budget_s"]) == ("not run", "not here: stubbed", None)
    assert parts["onnxruntime"]["status"] == "ok" and parts["onnxruntime"]["figures"]["note"] == "ran"
    # the last part that runs gets all the time left: about 60 s minus what the others took
    assert len(seen) == 1 and 50 < seen[0] <= parts["onnxruntime"]["budget_s"] <= 60
    text = out.read_text()
    assert text == gpu_check.render(report)  # the markdown is the JSON's figures
    assert "| throughput | " in text and "RuntimeError: the GPU caught fire" in text and "second line" not in text
    assert "| batch | clips_per_s |" in text and "| 1 | 12.5 |" in text and "| 32 | — |" in text
    assert "- sweep_passed: no" in text and f"`{report['command']}`" in text


def test_model_variants_follow_the_config_attentions():
    from tsi.config import ATTENTIONS

    assert gpu_parts.model_variants() == [("tsn_r50", None), ("tsm_r50", None)] + [("tsi_r50", a) for a in ATTENTIONS]


class FakeModel:
    def __init__(self, **fields):
        from tsi.config import TSIConfig

        self.cfg = TSIConfig(**{k: v for k, v in fields.items() if k == "attention"})

    def cuda(self):
        return self

    eval = cuda


def test_throughput_runs_eager_and_graphs_first_and_skips_what_the_budget_leaves_no_time_for(monkeypatch, tmp_path):
    """50 s left: every eager and CUDA-graph case (~15 s guessed, instant here) runs, no compile
    (~90 s + 15 s guessed) starts; a case that raises is a failed row and the next case runs."""
    calls = []

    def forward(net, shape, batch, *, graph, warmup, iters):
        calls.append((net.cfg.attention if net.cfg.motion == "sme" else None, batch, graph))
        if net.cfg.attention == "fused" and graph:
            raise RuntimeError("capture failed\ndetails")
        return {"median_ms": 2.0, "clips_per_s": batch * 500.0}

    monkeypatch.setattr("tsi.model.create_model", lambda arch, **kw: FakeModel(**kw))
    monkeypatch.setattr(gpu_parts, "forward_throughput", forward)
    ctx = gpu_parts.Context(out=tmp_path / "r.md", workdir=tmp_path, warmup=1, iters=2)
    ctx.deadline = gpu_parts.time.monotonic() + 50
    rows = gpu_parts.throughput(ctx)["rows"]
    variants = gpu_parts.model_variants()
    assert len(rows) == len(variants) * len(gpu_parts.BATCHES) * 3 and len(calls) == len(rows) * 2 // 3
    by_mode = {m: [r for r in rows if r["mode"] == m] for m in ("eager", "cuda-graph", "compile")}
    assert [r["mode"] for r in rows] == [m for m in by_mode for _ in by_mode[m]]  # eager, graphs, then compiles
    assert all(r["status"] == "ok" and r["clips_per_s"] == r["batch"] * 500.0 for r in by_mode["eager"])
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["attention"], r["mode"], r["batch"]) for r in failed] == [("fused", "cuda-graph", b) for b in gpu_parts.BATCHES]
    assert failed[0]["reason"] == "RuntimeError: capture failed"
    assert all(r["status"] == "skipped" and "~105 s" in r["reason"] for r in by_mode["compile"])
    # what the budget cuts first: the compiles, the largest batch and TSI's default attention first
    from tsi.config import TSIConfig

    assert [(r["model"], r["attention"], r["batch"]) for r in by_mode["compile"][:3]] == [
        ("tsi_r50", TSIConfig().attention, 32), ("tsn_r50", None, 32), ("tsm_r50", None, 32)]
    assert by_mode["compile"][-1]["batch"] == 1


def test_run_bounded_kills_the_command_at_its_timeout():
    code = "import time; print('started', flush=True); time.sleep(60)"
    t0 = gpu_parts.time.monotonic()
    assert gpu_parts.run_bounded([sys.executable, "-c", code], 1.0) == (None, "started")
    assert gpu_parts.time.monotonic() - t0 < 30
    assert gpu_parts.run_bounded([sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"], 30) == (3, "two")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run")
def test_attention_part_runs_the_benchmark_and_records_its_refusal(tmp_path):
    ctx = gpu_parts.Context(out=tmp_path / "r.md", workdir=tmp_path, warmup=1, iters=1)
    ctx.deadline = gpu_parts.time.monotonic() + 120
    with pytest.raises(gpu_parts.PartFailed) as e:
        gpu_parts.attention(ctx)
    assert str(e.value).startswith("exit status 2: ") and "no CUDA GPU visible to torch" in str(e.value)
    assert e.value.figures["exit"] == 2 and "timings" not in e.value.figures


class Offset:
    """A backend whose logits are another's plus ``delta``."""

    def __init__(self, backend, delta):
        self.backend, self.delta, self.card = backend, delta, backend.card

    def infer_batch(self, x):
        return self.backend.infer_batch(x) + self.delta


def test_compare_backends_times_each_and_differs_from_the_last(tiny_onnx):
    from runtime.backends import open_backend

    ref = open_backend(tiny_onnx[0], "onnxruntime", providers=["cpu"], threads=1)
    rows = compare_backends({"shifted": Offset(ref, np.float32(0.25)), "cpu": ref}, (1, 3), repeats=2)
    assert [(r["backend"], r["batch"]) for r in rows] == [("shifted", 1), ("cpu", 1), ("shifted", 3), ("cpu", 3)]
    assert [r["max_abs_logit_diff"] for r in rows] == [0.25, 0.0, 0.25, 0.0]
    assert all(r["runs"] == 2 and r["p50_ms"] > 0 and r["clips_per_s"] > 0 for r in rows)
