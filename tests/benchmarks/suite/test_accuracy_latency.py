"""The accuracy-vs-latency benchmark on a small run: rows, JSON schema, markdown, PNGs, errors."""

import json

import pytest

from benchmarks.suite.accuracy_latency import main
from benchmarks.suite.report import pareto_front, tsi_tsn_ratios
from tests.export.helpers import LABELS, write_video_folder

ROW_KEYS = {"key", "group", "model", "family", "frames", "size", "weights", "backend", "device", "precision",
            "variant", "status", "reason", "top1", "top1_reason", "eval_clips", "latency_ms", "throughput",
            "peak_mem_mib", "file_bytes", "gmacs", "params_m", "loadavg", "power", "setup_s"}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_data")
    write_video_folder(root / "train", per_class=2, classes=LABELS)
    write_video_folder(root / "val", per_class=1, classes=LABELS)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return root


@pytest.fixture(scope="module")
def small_run(small_data, tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    rc = main(["--checkpoint", str(tiny_ckpt), "--data", str(small_data), "--labels", str(small_data / "labels.txt"),
               "--frames", "4", "--no-r50", "--backends", "pytorch-eager", "onnxruntime", "openvino", "tensorrt",
               "--precisions", "fp32", "int8", "--calib-clips", "8", "--calib-method", "minmax",
               "--repeats", "2", "--batches", "2", "--min-time", "0.05", "--threads", "1", "--pair-rounds", "2", "--out", str(out)])
    return rc, out


def test_small_run_writes_every_output(small_run):
    rc, out = small_run
    assert rc == 0
    for name in ("accuracy_latency.json", "accuracy_latency.md", "accuracy_latency_pareto.png",
                 "accuracy_latency_throughput.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_latency_pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_small_run_json_schema(small_run):
    _, out = small_run
    r = json.loads((out / "accuracy_latency.json").read_text())
    assert r["format"] == "tsi-accuracy-latency" and r["version"] == 1 and not r["interrupted"]
    assert r["machine"]["cpu"] and "torch" in r["machine"]["libraries"] and r["machine"]["load_average_start"]
    assert r["eval"]["clips"] == len(LABELS)
    for row in r["rows"]:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["status"] in ("measured", "absent")
        if row["status"] == "absent":  # never a figure without a measurement
            assert row["reason"] and row["latency_ms"] is None and row["throughput"] == []
        else:
            assert row["latency_ms"]["n"] == 2 and row["latency_ms"]["p95"] >= row["latency_ms"]["p50"] > 0
            assert [t["batch"] for t in row["throughput"]] == [1, 2]
            assert row["file_bytes"] > 0 and row["gmacs"] > 0
    measured = {(x["family"], x["backend"], x["precision"], x["variant"]): x for x in r["rows"] if x["status"] == "measured"}
    # the trained TSI has a top-1 on every backend it ran on; random-weight TSN/TSM say why they have none
    assert measured[("tsi", "onnxruntime", "fp32", "standard")]["top1"] is not None
    assert measured[("tsi", "onnxruntime", "int8", "standard")]["top1"] is not None
    assert measured[("tsi", "onnxruntime", "fp32", "mha")]["notes"].startswith("parity")
    # OpenVINO: the FP32 graph and NNCF's INT8 IR on the runtime's backend; no FP16 graph of its own
    assert measured[("tsi", "openvino", "fp32", "standard")]["top1"] is not None
    assert measured[("tsi", "openvino", "int8", "standard")]["notes"].startswith("NNCF on 8 clips")
    assert measured[("tsi", "openvino", "int8", "standard")]["file_what"] == "OpenVINO IR"
    assert measured[("tsn", "pytorch-eager", "fp32", "standard")]["top1"] is None
    assert "random weights" in measured[("tsn", "pytorch-eager", "fp32", "standard")]["top1_reason"]
    absent = {(x["family"], x["backend"], x["precision"]): x["reason"] for x in r["rows"] if x["status"] == "absent"}
    assert "torch.ao" in absent[("tsi", "pytorch-eager", "int8")]
    assert "TensorRT" in absent[("tsi", "tensorrt", "*")]
    # TSI/TSN per backend, precision and batch
    got = {(x["backend"], x["precision"], x["variant"], x["batch"]) for x in r["ratios"]}
    assert ("onnxruntime", "fp32", "standard", 2) in got and ("pytorch-eager", "fp32", "standard", 1) in got
    paired = {x["backend"]: x for x in r["paired"]}
    assert set(paired) == {"pytorch-eager", "onnxruntime", "openvino"}
    for x in paired.values():
        assert x["tsi"]["n"] == x["tsn"]["n"] == 2 and x["batch"] == 2
        assert x["ratio"] == pytest.approx(x["tsi"]["clips_per_s"] / x["tsn"]["clips_per_s"])
    assert r["attention"]["profile"]["share"] > 0 and r["attention"]["latency"]["speedup"] > 0


def test_small_run_markdown(small_run):
    _, out = small_run
    md = (out / "accuracy_latency.md").read_text()
    for text in ("## TSI / TSN throughput", "Paired", "## Measured rows", "## Absent", "## Saliency attention",
                 "Load average", "accuracy_latency_pareto.png", "tensorrt"):
        assert text in md, text


def test_ratios_and_pareto_front():
    def row(fam, tp):
        return {"family": fam, "group": "r50", "frames": 8, "size": 224, "backend": "onnxruntime", "device": "cpu",
                "precision": "fp32", "variant": "standard", "status": "measured", "gmacs": 1.0,
                "throughput": [{"batch": 1, "clips_per_s": tp}]}

    (x,) = tsi_tsn_ratios([row("tsi", 2.0), row("tsn", 4.0), row("tsm", 3.0)])
    assert x["ratio"] == 0.5 and x["batch"] == 1
    # (latency, accuracy): (1, 50) and (2, 80) are on the front; (3, 70) is beaten by (2, 80)
    assert pareto_front([(3.0, 70.0), (1.0, 50.0), (2.0, 80.0)]) == [1, 2]


@pytest.mark.parametrize("extra, match", [(["--trtexec-json", "missing.json"], "not found"),
                                          (["--repeats", "0"], "--repeats"),
                                          (["--data", "no/such/folder"], "not found")])
def test_bad_options_exit_2(tmp_path, extra, match, caplog):
    assert main(["--out", str(tmp_path), "--no-r50", *extra]) == 2
    assert match in caplog.text


def test_foreign_file_is_not_overwritten(tmp_path, caplog):
    (tmp_path / "accuracy_latency.json").write_text('{"mine": true}')
    assert main(["--out", str(tmp_path), "--no-r50"]) == 2
    assert "not a report of this benchmark" in caplog.text
    assert json.loads((tmp_path / "accuracy_latency.json").read_text()) == {"mine": True}


@pytest.mark.slow
def test_quick_run(tmp_path):
    """The --quick run as a newcomer types it (the small run above covers the same code faster)."""
    assert main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "accuracy_latency_quick.json").read_text())
    assert r["quick"] and any(x["top1"] is not None for x in r["rows"])


def test_readme_section_is_generated_from_the_json(small_run, tmp_path):
    from benchmarks.suite.readme_section import main as readme_main

    _, out = small_run
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\n## Benchmarks\n\nold hand-typed 99.9\n\n## Layout\n\nkeep me\n")
    assert readme_main(["--json", str(out / "accuracy_latency.json"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old hand-typed" not in text and text.endswith("## Layout\n\nkeep me\n")
    assert "TSI/TSN" in text and "accuracy_latency_pareto.png" in text and "Pareto front" in text
    assert readme_main(["--json", str(out / "accuracy_latency.json"), "--readme", str(readme)]) == 0
    assert readme.read_text() == text  # regenerating changes nothing
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    assert readme_main(["--json", str(tmp_path / "other.json"), "--readme", str(readme)]) == 2
