"""A real MJPEG-over-HTTP camera on 127.0.0.1 for the tests, read by OpenCV's FFmpeg backend.

``MjpegServer`` serves ``multipart/x-mixed-replace`` JPEG frames of one solid colour at ``fps``
(the colour can change while it runs). It can be started late (the address is known before it
listens), frozen (every open connection stays open and sends nothing more; new connections are
served), dropped (every connection closed and the port closed) and brought back on the same port.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from tests.runtime.helpers import BGR

__all__ = ["MjpegServer", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MjpegServer:
    def __init__(self, colour: str = "red", fps: float = 30.0, size: tuple[int, int] = (64, 48),
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.fps = fps
        self.size = size
        self.colour = colour
        self.frames_sent = 0
        self.connections = 0
        self._generation = 0  # connections of an older generation are frozen
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def jpeg(self) -> bytes:
        w, h = self.size
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = BGR[self.colour]
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return buf.tobytes()

    # -- control -------------------------------------------------------------------------------
    def start(self) -> "MjpegServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                with owner._lock:
                    generation = owner._generation
                    owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                period = 1.0 / owner.fps
                t_next = time.monotonic()
                try:
                    while not owner._closed.is_set():
                        if generation != owner._generation:  # frozen: stay open, send nothing
                            owner._closed.wait(0.05)
                            continue
                        data = owner.jpeg()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode()
                                         + data + b"\r\n")
                        self.wfile.flush()
                        with owner._lock:
                            owner.frames_sent += 1
                        t_next += period
                        owner._closed.wait(max(0.0, t_next - time.monotonic()))
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        self._closed.clear()
        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def start_later(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, self.start)
        timer.daemon = True
        timer.start()
        return timer

    def freeze(self) -> None:
        """Every connection open now stays open and sends nothing more; new ones are served."""
        with self._lock:
            self._generation += 1

    def drop(self) -> None:
        """Close every connection and the listening port (``start()`` brings it back)."""
        self._closed.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    stop = drop

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.drop()
