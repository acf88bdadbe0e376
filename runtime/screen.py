"""The screen the live window opens on: its size (from X11, where there is one) and the size a
window showing a ``w`` x ``h`` image gets on it (:func:`fit`): the image's own, scaled down to fit
:data:`FIT_FRACTION` of the screen (room for the title bar and a panel) when larger."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from typing import Iterator

__all__ = ["DEFAULT_SCREEN", "FIT_FRACTION", "NoDisplayError", "fit", "screen_size"]

DEFAULT_SCREEN = (1920, 1080)  # assumed where the screen cannot be asked (Wayland, no libX11)
FIT_FRACTION = 0.9  # the most of the screen's width and height a window takes


class NoDisplayError(RuntimeError):
    """There is no screen to open a window on."""


@contextlib.contextmanager
def screen_size() -> Iterator[tuple[int, int]]:
    """``with screen_size() as (width, height)``: the default screen of ``$DISPLAY``, its
    connection held open for the block (open the window inside: an X server whose last client
    leaves resets, refusing connections for a moment). :data:`DEFAULT_SCREEN` on Wayland without
    X11 or without libX11. Raises :class:`NoDisplayError` when there is no display at all or
    ``$DISPLAY`` cannot be connected to (checked here: Qt would abort the process instead)."""
    display = os.environ.get("DISPLAY")
    if not display:
        if os.environ.get("WAYLAND_DISPLAY"):
            yield DEFAULT_SCREEN
            return
        raise NoDisplayError("there is no display to open a window on ($DISPLAY is not set)")
    name = ctypes.util.find_library("X11")
    if name is None:
        yield DEFAULT_SCREEN
        return
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        raise NoDisplayError(f"cannot connect to the X display {display!r} ($DISPLAY)")
    try:
        screen = x11.XDefaultScreen(dpy)
        yield int(x11.XDisplayWidth(dpy, screen)), int(x11.XDisplayHeight(dpy, screen))
    finally:
        x11.XCloseDisplay(dpy)


def fit(size: tuple[int, int], screen: tuple[int, int]) -> tuple[int, int]:
    """The window size for an image of ``size`` (width, height): the image's, or scaled down
    keeping its aspect ratio to fit :data:`FIT_FRACTION` of ``screen``."""
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"an image of {w}x{h} pixels")
    scale = min(1.0, FIT_FRACTION * screen[0] / w, FIT_FRACTION * screen[1] / h)
    return max(1, int(w * scale)), max(1, int(h * scale))
