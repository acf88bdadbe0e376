"""A real X server for the window tests and screenshots: :class:`Xvfb` (on a display number it
picks itself), :func:`grab` (``xwd`` of a window by name, or of the screen) and :func:`read_xwd`
(an XWD file as a BGR array, with NumPy only). :func:`gui_python`: the Python whose OpenCV has a
GUI, which runs the window (``$TSI_GUI_PYTHON``; .ci/run makes one)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GUI_PYTHON_ENV = "TSI_GUI_PYTHON"
ROOT = Path(__file__).resolve().parents[2]
_HAS_GUI = "from runtime.display import has_gui; raise SystemExit(0 if has_gui() else 3)"


def missing_tools() -> list[str]:
    return [t for t in ("Xvfb", "xwd") if shutil.which(t) is None]


def gui_python() -> str | None:
    """``$TSI_GUI_PYTHON`` (its OpenCV must have a GUI: a ValueError otherwise), else this Python
    when its OpenCV has one, else None."""
    given = os.environ.get(GUI_PYTHON_ENV)
    python = given or sys.executable
    try:
        rc = subprocess.run([python, "-c", _HAS_GUI], cwd=ROOT, capture_output=True, timeout=60).returncode
    except OSError as e:
        raise ValueError(f"${GUI_PYTHON_ENV}={python}: {e.strerror or e}") from None
    if rc == 0:
        return python
    if given:
        raise ValueError(f"${GUI_PYTHON_ENV}={python}: its OpenCV has no GUI (rc {rc})")
    return None


class Xvfb:
    """``Xvfb`` on a free display, ``width`` x ``height`` x 24, black root; stopped on exit. The
    number is drawn at random above 100 and the server checked to be this one (its screen's size
    through ``xwd``). ``-noreset``: an X server otherwise resets when its last client leaves and
    refuses connections meanwhile (the check's ``xwd`` and the runtime's screen probe are such
    clients: Qt then failed to connect)."""

    def __init__(self, width: int = 1024, height: int = 768) -> None:
        self.size = (width, height)
        self.proc: subprocess.Popen | None = None
        self.display = ""

    def __enter__(self) -> "Xvfb":
        rng = random.Random()
        for _ in range(8):
            number = rng.randrange(100, 30000)
            if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
                continue
            self.display = f":{number}"
            self.proc = subprocess.Popen(
                ["Xvfb", self.display, "-screen", "0", f"{self.size[0]}x{self.size[1]}x24", "-br",
                 "-noreset", "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):  # up within 10 s, or it exited (the number was taken)
                if self.proc.poll() is not None:
                    break
                if self._ours():
                    return self
                time.sleep(0.1)
            self.__exit__()
        raise RuntimeError("Xvfb did not start on a free display (8 tries)")

    def _ours(self) -> bool:
        """The server on :attr:`display` answers and has this screen's size."""
        with tempfile.NamedTemporaryFile(suffix=".xwd") as f:
            r = subprocess.run(["xwd", "-root", "-silent", "-out", f.name], env=self.env(),
                               capture_output=True, timeout=30)
            if r.returncode != 0:
                return False
            header = np.frombuffer(Path(f.name).read_bytes()[:100], ">u4")
        return len(header) == 25 and (int(header[4]), int(header[5])) == self.size

    def env(self) -> dict[str, str]:
        """This process's environment, on this display (no Wayland, no Qt plugin surprises)."""
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        env["DISPLAY"] = self.display
        return env

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def grab(x: Xvfb, out: Path, window: str | None = None) -> np.ndarray | None:
    """The pixels of the window named ``window`` (None: the whole screen) on ``x``'s display, via
    ``xwd``; None while there is no such window."""
    which = ["-name", window] if window else ["-root"]
    r = subprocess.run(["xwd", "-silent", *which, "-out", str(out)], env=x.env(), capture_output=True,
                       timeout=30)
    if r.returncode != 0:
        return None
    return read_xwd(out.read_bytes())


def read_xwd(data: bytes) -> np.ndarray:
    """An XWD (X Window Dump, version 7) image of 24 or 32 bits a pixel, ZPixmap, as (H, W, 3) BGR."""
    header = np.frombuffer(data[:100], ">u4")
    header_size, version, pixmap_format, depth, width, height = (int(v) for v in header[:6])
    byte_order, bits_per_pixel, bytes_per_line = int(header[7]), int(header[11]), int(header[12])
    masks = [int(v) for v in header[14:17]]  # red, green, blue
    ncolors = int(header[19])
    if version != 7 or pixmap_format != 2 or bits_per_pixel not in (24, 32) or depth < 24:
        raise ValueError(f"an XWD file this reader does not take (version {version}, format "
                         f"{pixmap_format}, depth {depth}, {bits_per_pixel} bits a pixel)")
    start = header_size + 12 * ncolors  # after the window name and the colour map
    need = start + bytes_per_line * height
    if len(data) < need:
        raise ValueError(f"a truncated XWD file ({len(data)} bytes, {need} needed)")
    rows = np.frombuffer(data, np.uint8, bytes_per_line * height, start).reshape(height, bytes_per_line)
    step = bits_per_pixel // 8
    pixels = rows[:, :width * step].reshape(height, width, step)
    if step == 4:
        value = pixels.view("<u4" if byte_order == 0 else ">u4")[..., 0]
    else:
        b = pixels.astype(np.uint32)
        value = (b[..., 0] | b[..., 1] << 8 | b[..., 2] << 16) if byte_order == 0 else \
            (b[..., 2] | b[..., 1] << 8 | b[..., 0] << 16)
    out = np.empty((height, width, 3), np.uint8)
    for channel, mask in zip((2, 1, 0), masks):  # red, green, blue -> BGR
        shift = (mask & -mask).bit_length() - 1
        out[..., channel] = (value & mask) >> shift
    return out


class LiveWindow:
    """``python -m runtime.live ARGS`` on ``x``'s display (from this checkout), its window named
    ``title``: :meth:`wait` grabs it until a condition holds, :meth:`press` types a key into it;
    on exit the run is stopped (SIGTERM: a clean stop) unless it ended; :attr:`output` is then
    what it printed and :attr:`returncode` its exit status."""

    def __init__(self, python: str, x: Xvfb, args: list[str], scratch: Path, title: str = "TSI live") -> None:
        self.x, self.scratch, self.title = x, scratch, title
        env = x.env()
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen([python, "-m", "runtime.live", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.image: np.ndarray | None = None  # the last grab
        self.output = ""
        self.returncode: int | None = None

    def __enter__(self) -> "LiveWindow":
        return self

    def wait(self, ready, timeout_s: float = 60.0) -> np.ndarray | None:
        """Grab the window until ``ready(image)`` (returns that image) or ``timeout_s`` or the run
        ends (returns None; :attr:`image` is the last grab)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            got = grab(self.x, self.scratch, self.title)
            if got is not None:
                self.image = got
                if ready(got):
                    return got
            time.sleep(0.2)
        return None

    def press(self, key: str) -> None:
        """Type ``key`` (an X keysym name: "q", "space", "Escape") with the pointer on the window."""
        press_key(self.x, key)

    def ended(self, timeout_s: float) -> bool:
        """True once the run ended by itself within ``timeout_s``."""
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.output, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output, _ = self.proc.communicate()
        self.returncode = self.proc.returncode


def watch_window(python: str, x: Xvfb, args: list[str], ready, out: Path, timeout_s: float = 60.0,
                 title: str = "TSI live") -> tuple[np.ndarray | None, str]:
    """Run the window (:class:`LiveWindow`) until ``ready(image)`` and stop it. Returns (the last
    image grabbed or None, the run's output)."""
    with LiveWindow(python, x, args, out, title) as live:
        live.wait(ready, timeout_s)
    return live.image, live.output


def press_key(x: Xvfb, key: str, at: tuple[int, int] = (10, 10)) -> None:
    """Move the pointer to ``at`` (there is no window manager: the keyboard follows the pointer)
    and press and release ``key`` there, with the XTEST extension (libXtst)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xtst = ctypes.CDLL(ctypes.util.find_library("Xtst") or "libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
    x11.XKeysymToKeycode.restype = ctypes.c_ubyte
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XFlush.argtypes = x11.XSync.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    dpy = x11.XOpenDisplay(x.display.encode())
    if not dpy:
        raise RuntimeError(f"cannot connect to {x.display}")
    try:
        code = x11.XKeysymToKeycode(dpy, x11.XStringToKeysym(key.encode()))
        if not code:
            raise ValueError(f"no key {key!r} on {x.display}")
        xtst.XTestFakeMotionEvent(dpy, -1, at[0], at[1], 0)
        xtst.XTestFakeKeyEvent(dpy, code, 1, 0)
        xtst.XTestFakeKeyEvent(dpy, code, 0, 0)
        x11.XSync(dpy, 0)
    finally:
        x11.XCloseDisplay(dpy)


def missing_xtest() -> bool:
    return ctypes.util.find_library("Xtst") is None
