"""Screenshots of the live window for docs/runtime.md: the demo model the runtime ships, on a
synthetic clip of two actions at 160x120 and at 1280x720, each run in the Python whose OpenCV has a
GUI on a 1920x1080 Xvfb and grabbed with xwd once a label is up:

    TSI_GUI_PYTHON=~/.cache/tsi-edge/gui-venv/bin/python python -m tests.runtime.window_screenshots

writes docs/window-160x120.jpg and docs/window-1280x720.jpg (``--out`` another folder; JPEG: the
clip's noisy background makes a 1 MB PNG). Needs what
the window test needs (Xvfb, xwd, the GUI Python: .ci/run makes it) and the training side's
``tsi.data.synthetic`` for the clip.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from runtime.screen import fit
from tests.runtime.xserver import ROOT, Xvfb, gui_python, missing_tools, watch_window

SCREEN = (1920, 1080)
SIZES = ((160, 120), (1280, 720))
JPEG_QUALITY = 90
SETTLE_S = 3.0  # after the window first shows a label: the smoothed scores and the FPS settle


def _labelled(image: np.ndarray) -> bool:
    """White or green text in the top left quarter (the overlay's labels)."""
    h, w = image.shape[:2]
    corner = image[: h // 2, : w // 2]
    white = corner.min(axis=2) > 200
    green = (corner[..., 1] > 180) & (corner[..., 0] < 130) & (corner[..., 2] < 130)
    return int(white.sum() + green.sum()) > 30


def shoot(python: str, size: tuple[int, int], folder: Path, out: Path) -> Path:
    w, h = size
    clip = folder / f"clip-{w}x{h}.mp4"
    subprocess.run([sys.executable, "-m", "tsi.data.synthetic", "--out", str(clip), "--force", "--size", f"{w}x{h}",
                    "--frames", "150", "--sequence", "move_right", "approach"], cwd=ROOT, check=True,
                   capture_output=True)
    first: list[float] = []

    def ready(image: np.ndarray) -> bool:
        if image.shape[:2] != fit(size, SCREEN)[::-1] or not _labelled(image):
            return False
        first[:] = first or [time.monotonic()]
        return time.monotonic() - first[0] >= SETTLE_S

    with Xvfb(*SCREEN) as x:
        image, output = watch_window(python, x, ["--source", str(clip)], ready, folder / "window.xwd")
    if image is None or not first:
        raise SystemExit(f"no labelled window for {w}x{h}:\n{output[-1500:]}")
    path = out / f"window-{w}x{h}.jpg"
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise SystemExit(f"cannot write {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.runtime.window_screenshots",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the screenshots (%(default)s)")
    args = p.parse_args(argv)
    missing = missing_tools()
    if missing:
        p.error(f"{' and '.join(missing)} not installed (apt-get install xvfb x11-apps)")
    if not args.out.is_dir():
        p.error(f"--out {args.out}: not a folder")
    try:
        python = gui_python()
    except ValueError as e:
        p.error(str(e))
    if python is None:
        p.error("no OpenCV with a GUI: set $TSI_GUI_PYTHON to a Python with opencv-python (.ci/run makes one)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            print(shoot(python, size, Path(tmp), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
