"""The window's pieces that need no screen: its size on a screen, the display checks, and what its
keys do to a run (a stand-in window: the shared OpenCV may have no GUI; the real window runs under
Xvfb in test_window_xvfb.py)."""

from __future__ import annotations

import ctypes.util

import pytest

from runtime.display import PAUSE, QUIT, RESET, DisplayUnavailableError, WindowDisplay, has_gui
from runtime.screen import FIT_FRACTION, NoDisplayError, fit, screen_size
from tests.runtime.helpers import FakeBackend, make_card, write_video


@pytest.mark.parametrize("size, screen, want", [
    ((160, 120), (1024, 768), (160, 120)),  # smaller than the screen: its own size
    ((1280, 720), (1024, 768), (int(1024 * FIT_FRACTION), int(720 * 1024 * FIT_FRACTION / 1280))),
    ((3840, 2160), (1920, 1080), (int(3840 * 1080 * FIT_FRACTION / 2160), int(1080 * FIT_FRACTION))),
    ((480, 1920), (1920, 1080), (int(480 * 1080 * FIT_FRACTION / 1920), int(1080 * FIT_FRACTION))),
])
def test_the_window_is_the_image_size_scaled_down_to_fit_the_screen(size, screen, want):
    got = fit(size, screen)
    assert got == want
    assert abs(got[0] / got[1] - size[0] / size[1]) < 0.01  # the aspect ratio kept


def test_an_empty_image_is_refused():
    with pytest.raises(ValueError, match="0x120"):
        fit((0, 120), (1920, 1080))


def test_no_display_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NoDisplayError, match=r"\$DISPLAY is not set"), screen_size():
        pass
    if has_gui():
        with pytest.raises(DisplayUnavailableError, match="--headless"):
            WindowDisplay()


@pytest.mark.skipif(ctypes.util.find_library("X11") is None, reason="no libX11 to ask the display")
def test_an_unreachable_display_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4097")  # no X server there
    with pytest.raises(NoDisplayError, match="cannot connect to the X display ':4097'"), screen_size():
        pass


@pytest.mark.skipif(has_gui(), reason="this OpenCV has a GUI")
def test_a_headless_opencv_names_the_gui_extra():
    with pytest.raises(DisplayUnavailableError) as info:
        WindowDisplay(screen=(1920, 1080))
    text = str(info.value)
    assert '".[gui]"' in text and "opencv-python-headless" in text and "\n" not in text


class KeyedDisplay:
    """Stands in for WindowDisplay: presses ``keys[i]`` at the i-th image shown; paused, presses
    ``pause_keys`` in turn."""

    def __init__(self, keys: dict[int, str], pause_keys: list[str | None]):
        self.keys, self.pause_keys = keys, list(pause_keys)
        self.shown = 0
        self.pauses = 0

    def show(self, image):
        self.shown += 1
        return self.keys.get(self.shown)

    def pause(self, stop=None):
        self.pauses += 1
        return self.pause_keys.pop(0)


def _run(tmp_path, display, colours, name="v.mp4"):
    """One stream of ``colours`` (a file, every frame) shown in ``display``; ``display`` may be a
    function of the stream's recogniser that returns the display."""
    from runtime.capture import FrameSource
    from runtime.recognizer import LiveRecognizer
    from runtime.scheduler import run_streams

    backend = FakeBackend(make_card())
    rec = LiveRecognizer(backend, stride=2)
    if callable(display):
        display = display(rec)
    src = FrameSource(write_video(tmp_path / name, colours), realtime=False)
    src.start()
    try:
        (summary,) = run_streams(backend, [(rec, src)], display=display)
    finally:
        src.stop()
    return rec, summary, display


def test_pause_then_quit_ends_the_run(tmp_path):
    _, summary, display = _run(tmp_path, KeyedDisplay({3: PAUSE}, [QUIT]), ["red"] * 60)
    assert summary.reason == "quit" and display.shown == 3 and display.pauses == 1


def test_pause_then_resume_goes_on_to_the_end(tmp_path):
    _, summary, display = _run(tmp_path, KeyedDisplay({3: PAUSE}, [None]), ["red"] * 60)
    assert summary.reason == "end_of_stream" and display.pauses == 1 and display.shown > 3


class ResetOnce(KeyedDisplay):
    """Presses r once, at the first image after ``rec`` recognised something."""

    def __init__(self, rec):
        super().__init__({}, [])
        self.rec, self.pressed = rec, False

    def show(self, image):
        self.shown += 1
        if self.rec.top and not self.pressed:
            self.pressed = True
            return RESET
        return None


def test_reset_closes_the_open_event_and_starts_the_window_again(tmp_path):
    plain, _, _ = _run(tmp_path, KeyedDisplay({}, []), ["red"] * 80)
    rec, summary, display = _run(tmp_path, ResetOnce, ["red"] * 80, name="w.mp4")
    assert display.pressed and summary.reason == "end_of_stream"
    assert plain.events == 1 and rec.events == 2  # the red event closed at the reset, a new one after
    assert rec.inferences < plain.inferences  # the window filled up again before scoring


def test_the_docs_state_the_window_s_numbers_as_the_code_has_them():
    """docs/runtime.md repeats these for the reader: it must follow the code."""
    from pathlib import Path

    from runtime.display import GUI_EXTRA, KEYS
    from runtime.overlay import MAX_BOX_FRACTION, MIN_FONT_SCALE
    from runtime.screen import DEFAULT_SCREEN

    doc = (Path(__file__).resolve().parents[2] / "docs" / "runtime.md").read_text(encoding="utf-8")
    section = doc[doc.index("**The window**"):]
    section = " ".join(section.split())  # across line breaks
    for said in (f"{FIT_FRACTION:.0%} of the screen", f"covers at most {MAX_BOX_FRACTION:.0%}",
                 f"never below {MIN_FONT_SCALE}", "{}x{} screen".format(*DEFAULT_SCREEN),
                 f'pip install ".[{GUI_EXTRA}]"'):
        assert said in doc or said in section, said
    assert {chr(k) for k in KEYS if k != 27} == {"q", " ", "p", "r"} and "Esc" in section
