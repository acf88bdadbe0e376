"""A full disk under tsi-live's outputs: one line naming the file, every JSONL line written before
kept, no half-written video left, and not mistaken for a codec problem."""

from __future__ import annotations

import json
import logging
import os
import subprocess

import numpy as np
import pytest

from runtime.live import main
from runtime.outputs import AtomicVideoWriter, JsonlWriter, OutputWriteError
from tests.runtime.helpers import make_card, make_onnx, write_video

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


@pytest.fixture()
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()[:100]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@needs_dev_full
def test_a_jsonl_on_a_full_disk_says_so_once_and_closes_cleanly(tmp_path):
    link = tmp_path / "events.jsonl"
    link.symlink_to("/dev/full")
    out = JsonlWriter(link)
    with pytest.raises(OutputWriteError, match=f"^no space left on device writing {link}$"):
        out.write({"label": "a"})
    out.write({"label": "b"})  # dropped: reported once
    assert out.close() == link and out.lines == 0


def test_a_jsonl_keeps_every_whole_line_when_the_disk_fills(small_disk):
    out = JsonlWriter(small_disk / "events.jsonl")
    record = {"label": "x" * 1000}
    with pytest.raises(OutputWriteError, match="no space left on device writing .*events.jsonl"):
        for _ in range(1000):
            out.write(record)
    out.close()
    lines = (small_disk / "events.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == out.lines > 10 and all(json.loads(line) == record and line.endswith("\n") for line in lines)


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_a_video_on_a_disk_that_fills_is_a_write_error_and_leaves_nothing(small_disk, name):
    rng = np.random.default_rng(0)
    video = AtomicVideoWriter(small_disk / name, fps=10)
    with pytest.raises(OutputWriteError, match=f"^no space left on device writing {small_disk / name}$"):
        for _ in range(500):
            video.write(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        video.close()
    video.write(np.zeros((96, 128, 3), np.uint8))  # dropped: reported once
    assert video.close() is None and os.listdir(small_disk) == []


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_a_video_on_a_full_disk_is_not_called_a_codec_problem(small_disk, name):
    (small_disk / "filler").write_bytes(b"\0" * (64 << 10))
    video = AtomicVideoWriter(small_disk / name, fps=10)
    with pytest.raises(OutputWriteError, match="no space left on device"):
        video.write(np.zeros((48, 64, 3), np.uint8))
    assert sorted(os.listdir(small_disk)) == ["filler"]


@needs_dev_full
def test_tsi_live_on_a_full_disk_is_one_line_exit_2(tmp_path, caplog):
    model = make_onnx(tmp_path / "m.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(tmp_path / "v.mp4", ["red"] * 12)
    link = tmp_path / "events.jsonl"
    link.symlink_to("/dev/full")
    with caplog.at_level(logging.ERROR):
        assert main(["--model", str(model), "--source", str(video), "--headless", "--no-realtime",
                     "--out-jsonl", str(link)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"no space left on device writing {link}"], caplog.text
