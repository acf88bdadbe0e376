"""benchmarks.camera_share: a still clip has no difference, a gain change is gone once each frame's
mean is out, a pure sub-pixel pan is gone once the best shift is applied (and its length found),
while an object that moves against a still background keeps most of its difference; and the CLI
writes its table for a folder of real videos and refuses a folder without classes in one line."""

import cv2
import numpy as np
import pytest

from benchmarks.camera_share import main, measure
from tests.export.helpers import write_video_folder

SHIFTS = np.arange(-2, 2.01, 0.25)


def texture(seed=0, size=48):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5)


def clip_of(frames):
    return np.stack([np.stack([f] * 3) for f in frames])[None]  # 1, T, 3, H, W


def test_still_gain_and_pan_are_told_apart():
    base = texture()
    still = measure(clip_of([base] * 4), SHIFTS, 4)
    assert still["raw"] == 0 and still["shifted"] == 0
    gain = measure(clip_of([base + 0.1 * k for k in range(4)]), SHIFTS, 4)
    assert gain["raw"] == pytest.approx(0.1, rel=1e-3) and gain["mean_out"] < 1e-5
    pan = [cv2.warpAffine(base, np.float32([[1, 0, 0.75 * k], [0, 1, 0]]), base.shape[::-1],
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for k in range(4)]
    r = measure(clip_of(pan), SHIFTS, 4)
    assert r["left"] < 0.35 and r["median_shift"] == pytest.approx(0.75)
    moving = []
    for k in range(4):
        f = np.zeros((48, 48), np.float32)
        f[10:20, 5 + 8 * k:15 + 8 * k] = 1.0  # a square jumping 8 px a frame on a still background
        moving.append(f)
    # the best shift (2 px, the search's radius) undoes a quarter of its 8 px jump, no more
    assert measure(clip_of(moving), SHIFTS, 4)["left"] == pytest.approx(0.75, abs=1e-4)


def test_cli_table_and_refusal(tmp_path, capsys):
    write_video_folder(tmp_path / "data", per_class=1)
    table = tmp_path / "cs.md"
    assert main(["--data", str(tmp_path / "data"), "--videos", "2", "--table", str(table)]) == 0
    row = [line for line in table.read_text().splitlines() if line.startswith(f"| {tmp_path / 'data'} |")]
    assert len(row) == 1 and row[0].split("|")[2].strip() == "14"  # 2 clips x 7 pairs
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        main(["--data", str(tmp_path / "empty")])
    assert e.value.code == 2 and "not a folder of class folders" in capsys.readouterr().err
