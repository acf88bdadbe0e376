"""The runtime as a service: signals, user mistakes, short and cut files, several streams."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import run
from runtime.display import QUIT
from runtime.live import main
from runtime.overlay import mosaic
from tests.runtime.helpers import BGR, make_card, make_onnx, write_video

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def model(tmp_path):
    return make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- signals ------------------------------------------------------------------------------------
def _start_live(model, video, out, *extra):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.live", "--model", str(model), "--source", str(video),
         "--headless", "--stride", "2", "--out-jsonl", str(out / "events.jsonl"),
         "--out-video", str(out / "annotated.avi"), *extra],
        cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_lines(path: Path, n: int, proc, limit_s: float = 30.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    raise AssertionError(f"{path} never had {n} lines")


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGHUP"], ["SIGINT", "SIGINT"]])
def test_a_signal_stops_the_run_cleanly_and_keeps_every_output(tmp_path, model, signals):
    video = write_video(tmp_path / "long.mp4", (["red"] * 15 + ["blue"] * 15) * 20)  # 20 s real time
    out = tmp_path / "out"
    out.mkdir()
    proc = _start_live(model, video, out)
    jsonl = out / "events.jsonl"
    try:
        _wait_for_lines(jsonl, 2, proc)  # followed under its final name during the run
        for name in signals:  # a second Ctrl-C lands while the first is being handled
            proc.send_signal(getattr(signal, name))
            time.sleep(0.01)
        log_text, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, log_text
    lines = read_jsonl(jsonl)
    summary = lines[-1]["summary"]
    assert summary["reason"] == "stopped" and summary["stopped_by"] == signals[0]
    assert summary["wall_s"] < 15
    assert [e["label"] for e in lines[:2]] == ["red", "blue"]
    assert "Traceback" not in log_text
    if len(signals) > 1:
        assert "already finishing" in log_text
    cap = cv2.VideoCapture(str(out / "annotated.avi"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 30
    cap.release()
    assert sorted(p.name for p in out.iterdir()) == ["annotated.avi", "events.jsonl"]  # no .partial
    for p in out.iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask(), p


# -- user mistakes: one line, exit 2, before the model loads ------------------------------------
def test_user_mistakes_are_one_line_exit_2_before_the_model_loads(tmp_path, model, monkeypatch,
                                                                   caplog):
    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(run, "open_model", no_model)
    video = write_video(tmp_path / "v.mp4", ["red"] * 10)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    (tmp_path / "dir.mp4").mkdir()
    locked = tmp_path / "locked.jsonl"
    locked.write_text("")
    locked.chmod(0o444)
    empty_list = tmp_path / "empty.txt"
    empty_list.write_text("# nothing\n\n")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\0" * 1000)
    base = ["--model", str(model), "--headless"]
    cases = [
        (["--source", str(video), "--out-video", str(tmp_path / "a.txt")], "must end in .mp4"),
        (["--source", str(video), "--out-jsonl", str(tmp_path / "a.json")], "must end in .jsonl"),
        (["--source", str(video), "--out-jsonl", str(a_file / "e.jsonl")], "is a file, not a folder"),
        (["--source", str(video), "--out-video", str(tmp_path / "dir.mp4")], "is a folder"),
        (["--source", str(tmp_path)], "is a folder, not a video file"),
        (["--source", str(tmp_path / "none.mp4")], "video file not found"),
        (["--source", str(corrupt)], "cannot open video file"),
        (["--source", str(video), "--source", str(video), "--out-jsonl", str(tmp_path / "e.jsonl")],
         "needs {name} or {index}"),
        (["--source", f"a={video}", "--source", f"a={video}"], "two streams are named 'a'"),
        (["--source", str(video), "--out-video", str(video)], "is also the source"),
        (["--source", str(video), "--stall-timeout", "40"], "below OpenCV's own read timeout"),
        (["--source", str(video), "--threshold", "2"], "--threshold must be in [0, 1]"),
        (["--sources", str(tmp_path / "list.txt")], "sources file not found"),
        (["--sources", str(empty_list)], "names no source"),
        (["--source", "0", "--no-realtime"], "live source"),
    ]
    if os.geteuid() != 0:  # root may write anything
        cases.append((["--source", str(video), "--out-jsonl", str(locked)], "read-only"))
    for args, words in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert main(base + args) == 2, args
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and words in errors[0].getMessage(), (args, caplog.text)
        assert "\n" not in errors[0].getMessage()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["colour.onnx", "v.mp4", "a_file", "dir.mp4", "empty.txt", "corrupt.mp4", "locked.jsonl"])
    assert locked.read_text() == ""  # nothing made, nothing replaced


# -- short and cut files ------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [True, False])
def test_a_clip_shorter_than_the_span_warns_and_is_classified_once_padded(tmp_path, model, caplog,
                                                                          pad):
    video = write_video(tmp_path / "short.mp4", ["green"] * 5)  # span is 8
    jsonl = tmp_path / "e.jsonl"
    with caplog.at_level(logging.WARNING):
        assert main(["--model", str(model), "--source", str(video), "--headless", "--no-realtime",
                     "--out-jsonl", str(jsonl)] + ([] if pad else ["--no-pad-short"])) == 0
    assert "5 frames, fewer than the model's span of 8" in caplog.text
    lines = read_jsonl(jsonl)
    summary = lines[-1]["summary"]
    if pad:
        assert lines[0] == {**lines[0], "label": "green", "padded": True, "end_frame": 4}
        assert summary["inferences"] == 1 and summary["padded"] is True
    else:
        assert len(lines) == 1 and summary["inferences"] == 0 and summary["padded"] is False


def test_a_cut_file_is_reported_with_frames_decoded_and_declared(tmp_path, model, caplog):
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(60):
        writer.write(np.full((48, 64, 3), BGR["blue"], np.uint8))
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    jsonl = tmp_path / "e.jsonl"
    with caplog.at_level(logging.WARNING):
        assert main(["--model", str(model), "--source", str(cut), "--headless", "--no-realtime",
                     "--out-jsonl", str(jsonl)]) == 0
    capture = read_jsonl(jsonl)[-1]["summary"]["capture"]
    assert capture["truncated"] is True and capture["declared_frames"] == 60
    assert 10 < capture["read"] < 40
    assert "of the 60 frames its container declares" in caplog.text and "truncated" in caplog.text
    assert main(["--model", str(model), "--source", str(full), "--headless", "--no-realtime",
                 "--out-jsonl", str(jsonl)]) == 0
    capture = read_jsonl(jsonl)[-1]["summary"]["capture"]
    assert capture["truncated"] is False and capture["read"] == 60


# -- several streams ----------------------------------------------------------------------------
def test_several_streams_share_one_batched_inference_and_keep_their_own_outputs(tmp_path, model,
                                                                                monkeypatch):
    from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    colours = {"a": ["red"] * 24 + ["green"] * 24, "b": ["blue"] * 48, "c": ["green"] * 30}
    sources = tmp_path / "sources.txt"
    sources.write_text("# three streams\n" + "\n".join(
        f"{n}={write_video(tmp_path / f'{n}.mp4', c)}" for n, c in colours.items()) + "\n")
    batches = []
    real = OnnxRuntimeBackend.infer
    monkeypatch.setattr(OnnxRuntimeBackend, "infer",
                        lambda self, clip: batches.append(clip.shape[0]) or real(self, clip))
    out = tmp_path / "out"
    assert main(["--model", str(model), "--sources", str(sources), "--headless", "--no-realtime",
                 "--stride", "2", "--smoothing", "mean", "--smooth-n", "2",
                 "--out-jsonl", str(out / "{name}.jsonl"), "--out-video", str(out / "{index}.avi")]) == 0
    per = {n: read_jsonl(out / f"{n}.jsonl") for n in colours}
    assert [e["label"] for e in per["a"][:-1]] == ["red", "green"]
    assert [e["label"] for e in per["b"][:-1]] == ["blue"]
    assert [e["label"] for e in per["c"][:-1]] == ["green"]
    for n, lines in per.items():
        s = lines[-1]["summary"]
        assert s["stream"] == n and s["frames"] == len(colours[n]) and s["reason"] == "end_of_stream"
    # windows fall due together (frames 7, 9, ...): one inference of 3 clips, then of 2 after c ends
    assert batches.count(3) == 12 and set(batches) == {3, 2}
    assert sum(batches) == sum(s["summary"]["inferences"] for s in (l[-1] for l in per.values()))
    for i in range(3):
        cap = cv2.VideoCapture(str(out / f"{i}.avi"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(list(colours.values())[i])
        cap.release()


def test_a_static_batch_model_runs_several_streams_in_chunks(tmp_path):
    model = make_onnx(tmp_path / "b1.onnx", card=make_card(frames=4, size=16, span=8), batch=1)
    videos = [write_video(tmp_path / f"{c}.mp4", [c] * 12) for c in ("red", "blue")]
    assert main(["--model", str(model), "--source", str(videos[0]), "--source", str(videos[1]),
                 "--headless", "--no-realtime", "--out-jsonl", str(tmp_path / "{name}.jsonl")]) == 0
    assert read_jsonl(tmp_path / "red.jsonl")[0]["label"] == "red"
    assert read_jsonl(tmp_path / "blue.jsonl")[0]["label"] == "blue"


def test_mosaic_tiles_the_streams():
    a = np.full((48, 64, 3), 50, np.uint8)
    b = np.full((100, 50, 3), 200, np.uint8)
    m = mosaic([a, b, None], ["a", "b", "c"], tile=(160, 90))
    assert m.shape == (180, 320, 3)  # 2 x 2 cells
    assert m[45, 80].tolist() == [50, 50, 50] and m[45, 240].tolist() == [200, 200, 200]
    assert m[135:, 160:].max() == 0  # the fourth cell is empty
    assert m[90:, :160].max() > 0  # "c: waiting" written in the third


def test_the_window_shows_one_mosaic_of_every_stream_and_quitting_stops_all(tmp_path):
    from runtime.capture import FrameSource
    from runtime.recognizer import LiveRecognizer
    from runtime.scheduler import run_streams
    from tests.runtime.helpers import FakeBackend

    class Display:  # stands in for WindowDisplay (this OpenCV may have no GUI)
        def __init__(self):
            self.shown = []

        def show(self, image):
            self.shown.append(image.copy())
            return QUIT if len(self.shown) == 5 else None  # the user presses q at the fifth image

    backend = FakeBackend(make_card())
    videos = [write_video(tmp_path / f"{c}.mp4", [c] * 60) for c in ("red", "blue")]
    streams = [(LiveRecognizer(backend, stride=2, name=v.stem), FrameSource(v, realtime=False))
               for v in videos]
    display = Display()
    for _, src in streams:
        src.start()
    try:
        summaries = run_streams(backend, streams, display=display)
    finally:
        for _, src in streams:
            src.stop()
    assert [s.reason for s in summaries] == ["quit", "quit"] and len(display.shown) == 5
    last = display.shown[-1]
    assert last.shape == (48, 128, 3)  # two 64x48 cells side by side (small sources are not enlarged)
    left, right = last[40, 32].astype(int), last[40, 96].astype(int)  # (under the overlay box)
    assert left[2] > 2 * left[0] + 40 and right[0] > 2 * right[2] + 40  # red | blue


@pytest.mark.parametrize("args", [["--stride", "0"], ["--reconnect-attempts", "-1"],
                                  ["--stall-timeout", "soon"], ["--bogus"]])
def test_a_bad_option_is_one_line_and_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tsi-live: error:")


def test_mosaic_keeps_a_few_large_sources_large_and_fits_many_into_the_canvas():
    from runtime.overlay import MOSAIC_CANVAS, text_style

    hd = np.full((720, 1280, 3), 90, np.uint8)
    four = mosaic([hd] * 4, list("ABCD"))
    assert four.shape == (1080, 1920, 3)  # 2 x 2 cells of 960 x 540: 3/4 of each frame's size
    sixteen = mosaic([hd] * 16)
    assert sixteen.shape[0] <= MOSAIC_CANVAS[1] and sixteen.shape[1] <= MOSAIC_CANVAS[0]
    small = mosaic([np.zeros((120, 160, 3), np.uint8)] * 2, ["x", "y"])
    assert small.shape == (120, 320, 3)  # never enlarged
    # the name is written at the overlay's size for the cell: taller text in the larger cells
    assert text_style(540)[0] > text_style(120)[0]
    label = four[:540, :960]
    green = (label[..., 1] > 200) & (label[..., 0] < 120)
    ys = np.nonzero(green.any(axis=1))[0]
    assert 12 <= ys.max() - ys.min() + 1 <= 40  # the "A" label: readable, not a few pixels high
    tiny = mosaic([hd] * 16, [str(i) for i in range(16)])[:sixteen.shape[0] // 4, :sixteen.shape[1] // 4]
    tiny_ys = np.nonzero(((tiny[..., 1] > 200) & (tiny[..., 0] < 120)).any(axis=1))[0]
    assert tiny_ys.max() - tiny_ys.min() + 1 < ys.max() - ys.min() + 1  # smaller in a smaller cell
