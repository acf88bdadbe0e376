"""A real X server for the window tests and screenshots: :class:`Xvfb` (on a display number it
picks itself), :func:`grab` (``xwd`` of a window by name, or of the screen) and :func:`read_xwd`
(an XWD file as a BGR array, with NumPy only). :func:`gui_python`: the Python whose OpenCV has a
GUI, which runs the window (``$TSI_GUI_PYTHON``; .ci/run makes one)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
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
    candidates = [given] if given else [sys.executable]
    for python in candidates:
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
    """``Xvfb`` on a free display (``-displayfd``: the server picks the number and says it once
    it accepts connections), ``width`` x ``height`` x 24, black root; stopped on exit."""

    def __init__(self, width: int = 1024, height: int = 768) -> None:
        self.size = (width, height)
        self.proc: subprocess.Popen | None = None
        self.display = ""

    def __enter__(self) -> "Xvfb":
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{self.size[0]}x{self.size[1]}x24",
                 "-br", "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            os.close(w)
            w = -1
            ready, _, _ = select.select([r], [], [], 30)
            number = os.read(r, 32).decode().strip() if ready else ""
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if not number:
            self.__exit__()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        for _ in range(100):  # connectable (xwd says so) within 10 s
            if subprocess.run(["xwd", "-root", "-silent", "-out", os.devnull], env=self.env(),
                              capture_output=True, timeout=30).returncode == 0:
                return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"Xvfb on {self.display} accepts no connection")

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


def watch_window(python: str, x: Xvfb, args: list[str], ready, out: Path, timeout_s: float = 60.0,
                 title: str = "TSI live") -> tuple[np.ndarray | None, str]:
    """Run ``python -m runtime.live ARGS`` on ``x``'s display (from this checkout) and grab its
    window named ``title`` until ``ready(image)``; then stop the run (SIGTERM: a clean stop).
    Returns (the last image grabbed or None, the run's output)."""
    env = x.env()
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen([python, "-m", "runtime.live", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    image = None
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            got = grab(x, out, title)
            if got is not None:
                image = got
                if ready(got):
                    break
            time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    return image, output
