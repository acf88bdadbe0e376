from tests.export.helpers import write_video_folder


def test_int8_benchmark_smoke(tmp_path, tiny_ckpt):
    """benchmarks/int8_accuracy.py on the tiny model and a few videos: it runs and writes its table
    (the numbers of an untrained model mean nothing; the real run uses a trained checkpoint)."""
    from benchmarks.int8_accuracy import run

    data = tmp_path / "data"
    write_video_folder(data / "train", per_class=4)
    write_video_folder(data / "val", per_class=2)
    out = tmp_path / "int8_accuracy.md"
    r = run(["--checkpoint", str(tiny_ckpt), "--data", str(data / "val"), "--calib-method", "minmax",
              "--repeats", "3", "--out", str(out)])
    text = out.read_text()
    assert r["n"] == 4 and r["calib_clips"] == 8 and 0 <= r["agree"] <= 1
    assert "| FP32 |" in text and "| INT8 Q/DQ |" in text and "CPU latency" in text
