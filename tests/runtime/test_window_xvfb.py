"""The live window under a real X server: Xvfb started here on a display it picks, the demo run in
the Python whose OpenCV has a GUI ($TSI_GUI_PYTHON; .ci/run makes one), the window grabbed with
xwd: its size is the source's (scaled down to fit the screen) and the overlay's text is on it; keys
typed with XTEST pause, resume, reset and quit it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from runtime.overlay import MAX_BOX_FRACTION
from runtime.screen import fit
from tests.runtime.helpers import make_card, make_onnx, write_video
from tests.runtime.xserver import (GUI_PYTHON_ENV, LiveWindow, Xvfb, gui_python, missing_tools, missing_xtest,
                                  watch_window)

SCREEN = (1024, 768)
pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"{' and '.join(missing_tools())} not "
                                "installed (apt-get install xvfb x11-apps)")


@pytest.fixture(scope="module")
def python():
    try:
        found = gui_python()
    except ValueError as e:
        pytest.fail(str(e))
    if found is None:
        pytest.skip(f"no OpenCV with a GUI here: set ${GUI_PYTHON_ENV} to a Python with opencv-python "
                    "(.ci/run makes one)")
    return found


def _blue(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)


def _text(image: np.ndarray) -> np.ndarray:
    """The overlay's text: white labels, the green recognised one, the grey stats (the clip is blue)."""
    return (image[..., 1] > 150) & (image[..., 2] > 60)


def _shown(image: np.ndarray) -> bool:
    return _blue(image).mean() > 0.3 and _text(image).sum() > 20


@pytest.mark.parametrize("source", [(160, 120), (1280, 720)])
def test_the_window_is_the_source_size_and_shows_the_overlay(python, tmp_path, source):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(tmp_path / "clip.avi", ["blue"] * 300, size=source)
    with Xvfb(*SCREEN) as x:
        image, output = watch_window(python, x, ["--model", str(model), "--source", str(video), "--stride", "2"],
                                     _shown, tmp_path / "window.xwd")
    assert image is not None, f"no window named 'TSI live' appeared:\n{output[-2000:]}"
    assert _shown(image), f"the window never showed the clip with its overlay:\n{output[-2000:]}"
    want_w, want_h = fit(source, SCREEN)
    assert image.shape[:2] == (want_h, want_w)
    assert (want_w, want_h) == source or want_w < source[0]  # 1280x720 on 1024x768: scaled down
    text = _text(image)
    rows, cols = np.nonzero(text)
    h, w = image.shape[:2]
    assert rows.max() < h * 0.9 and cols.max() < w * 0.9  # top left, in its box
    runs = np.diff(np.nonzero(text.any(axis=1))[0])
    first_line = 1 + (np.argmax(runs > 1) if (runs > 1).any() else len(runs))
    assert first_line >= 8, "the best label's text is too small to read"
    covered = ~_blue(image)  # the box darkens the frame
    assert covered.mean() <= MAX_BOX_FRACTION + 0.02


def _red(image: np.ndarray) -> np.ndarray:
    return (image[..., 2] > 200) & (image[..., 1] < 60) & (image[..., 0] < 60)


@pytest.mark.skipif(missing_xtest(), reason="no libXtst to type keys into the window (apt-get install libxtst6)")
def test_the_keys_pause_reset_and_quit(python, tmp_path):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(tmp_path / "clip.avi", (["blue"] * 10 + ["red"] * 10) * 45, size=(160, 120))  # 30 s
    with Xvfb(*SCREEN) as x, LiveWindow(python, x, ["--model", str(model), "--source", str(video),
                                                    "--stride", "2"], tmp_path / "window.xwd") as live:
        assert live.wait(_shown) is not None, "no window"
        live.press("p")
        time.sleep(1.0)  # paused within a frame
        paused = live.wait(lambda image: True)
        time.sleep(1.5)  # unpaused, the clip would turn from blue to red and back in a second
        assert np.array_equal(live.wait(lambda image: True), paused), "the window went on while paused"
        live.press("space")  # resume
        assert live.wait(lambda image: _blue(image).mean() > 0.3, 10) is not None
        assert live.wait(lambda image: _red(image).mean() > 0.3, 10) is not None, "not resumed"
        live.press("r")
        time.sleep(0.5)
        live.press("Escape")
        assert live.ended(20), "Esc did not end the run"
    assert live.returncode == 0, live.output[-2000:]
    assert "reset by the window's r key" in live.output
    assert "stopped (quit)" in live.output, live.output[-2000:]
