"""The live window: one ``cv2.imshow`` window sized to what it shows (scaled down to fit the
screen, :func:`runtime.screen.fit`), resizable keeping the aspect ratio, without Qt's toolbar; its
keys (:data:`KEYS`): q / Esc quit, space / p pause, r reset the streams' state."""

from __future__ import annotations

import contextlib
import re
import threading

import cv2
import numpy as np

from runtime.screen import NoDisplayError, fit, screen_size

__all__ = ["DisplayUnavailableError", "GUI_EXTRA", "KEYS", "PAUSE", "QUIT", "RESET", "WINDOW_TITLE",
           "WindowDisplay", "has_gui"]

QUIT, PAUSE, RESET = "quit", "pause", "reset"
KEYS = {ord("q"): QUIT, 27: QUIT, ord(" "): PAUSE, ord("p"): PAUSE, ord("r"): RESET}
WINDOW_TITLE = "TSI live"
GUI_EXTRA = "gui"  # setup.cfg's extra with the GUI OpenCV
_FLAGS = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
_HEADLESS = ("run with --headless --out-video out.mp4 --out-jsonl events.jsonl (or --serve 8080)")


class DisplayUnavailableError(RuntimeError):
    """No window can be opened: this OpenCV has no GUI, or there is no display."""


def has_gui() -> bool:
    """This OpenCV was built with a GUI (Qt, GTK...): its build information's ``GUI:`` is not NONE."""
    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.M)
    return found is not None and found.group(1).upper() != "NONE"


def _no_gui(detail: str = "") -> DisplayUnavailableError:
    return DisplayUnavailableError(
        "this OpenCV has no GUI support (opencv-python-headless, or built without GTK/Qt), so it "
        f"cannot open a window: {_HEADLESS}, or install the GUI OpenCV instead of the headless one "
        f"(one cv2: pip uninstall -y opencv-python-headless && pip install \".[{GUI_EXTRA}]\"; on a "
        f"Jetson use JetPack's OpenCV, which has GTK){detail}")


class WindowDisplay:
    """The window. :meth:`show` shows a frame and returns the key's action (:data:`QUIT`,
    :data:`PAUSE`, :data:`RESET`) or None; closing the window is :data:`QUIT`. ``screen``:
    (width, height), default the display's (:func:`runtime.screen.screen_size`)."""

    def __init__(self, title: str = WINDOW_TITLE, screen: tuple[int, int] | None = None) -> None:
        self.title = title
        if not has_gui():
            raise _no_gui()
        with contextlib.ExitStack() as held:
            try:  # checked first: Qt aborts the process without a display
                self.screen = screen or held.enter_context(screen_size())
            except NoDisplayError as e:
                raise DisplayUnavailableError(f"{e}: {_HEADLESS}, or run it on a desktop (or ssh -X)") from None
            try:
                cv2.namedWindow(title, _FLAGS)  # Qt connects while the probe's connection is held
            except cv2.error as e:
                raise _no_gui(f" [{str(e).strip().splitlines()[0][:120]}]") from None
        self._open = True
        self._size: tuple[int, int] | None = None  # of the last image shown

    def show(self, frame: np.ndarray) -> str | None:
        """Show ``frame``; the window is sized to it when its size changes (else the user's size stays)."""
        cv2.imshow(self.title, frame)
        h, w = frame.shape[:2]
        if (w, h) != self._size:
            self._size = (w, h)
            cv2.resizeWindow(self.title, *fit((w, h), self.screen))
        return self.key(1)

    def key(self, wait_ms: int = 1) -> str | None:
        """The action of a key pressed within ``wait_ms`` (:data:`QUIT` once the window is closed)."""
        action = KEYS.get(cv2.waitKey(wait_ms) & 0xFF)
        if action is not None:
            return action
        try:
            return None if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1 else QUIT
        except cv2.error:
            return QUIT

    def pause(self, stop: threading.Event | None = None, poll_ms: int = 50) -> str | None:
        """Paused: wait for the next key. Returns None (space / p again, or ``stop`` set), :data:`QUIT`
        or :data:`RESET` (which also ends the pause)."""
        while stop is None or not stop.is_set():
            action = self.key(poll_ms)
            if action == PAUSE:
                return None
            if action is not None:
                return action
        return None

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass  # window already gone
