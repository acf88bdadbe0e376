"""The HTTP server of ``tsi-live --serve`` (:class:`LiveServer`), in the runtime's process: the
page (``/``), the video (``/video.mjpg?stream=NAME|all``), server-sent updates (``/updates``),
``/metrics``, ``/healthz`` and ``/events`` (JSON). Nothing is served from disk.

* Every route checks the access token when one is set (``?token=`` or ``Authorization: Bearer``).
* At most ``max_clients`` connections at once; the next is answered 503 and closed.
* A client that does not take what is sent within ``send_timeout`` seconds is dropped: the
  runtime never waits for a client, and a client waits only for the newest frame.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.serve.jpeg import ALL, JpegFeed
from runtime.serve.page import page

log = logging.getLogger(__name__)

__all__ = ["LiveServer", "MAX_CLIENTS", "SEND_TIMEOUT_S"]

MAX_CLIENTS = 20  # connections served at once (a page holds two: its video and its updates)
SEND_TIMEOUT_S = 5.0  # a client that takes nothing for this long is dropped
HEARTBEAT_S = 1.0  # the most time between two updates on /updates
_BOUNDARY = "tsiframe"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], live: "LiveServer") -> None:
        self.live = live
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.live.admit():
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Retry-After: 5\r\nConnection: close\r\n\r\n"
                                b"too many clients\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.live.leave()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "tsi-live"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.live.send_timeout)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - the base's name
        live = self.server.live
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        token = query.get("token") or self._bearer()
        if live.token is not None and not (token and hmac.compare_digest(token, live.token)):
            self._send(401, b"a valid token is needed (?token= or Authorization: Bearer)\n", "text/plain")
            return
        route = _ROUTES.get(url.path)
        if route is None:
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            route(self, query, token)
        except (OSError, ValueError) as e:  # the client went away, or was too slow: dropped
            log.debug("client %s dropped: %s", self.address_string(), e)
            self.close_connection = True

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, (json.dumps(obj) + "\n").encode(), "application/json")

    # -- routes -------------------------------------------------------------------------------
    def page(self, query: dict, token: str | None) -> None:
        self._send(200, page(list(self.server.live.board.names), token), "text/html; charset=utf-8")

    def healthz(self, query: dict, token: str | None) -> None:
        ok, detail = self.server.live.board.health()
        self._json(200 if ok else 503, detail)

    def events(self, query: dict, token: str | None) -> None:
        board = self.server.live.board
        entries, cursor = board.log_since(0)
        self._json(200, {"events": entries, "logged": cursor, **board.snapshot()})

    def metrics(self, query: dict, token: str | None) -> None:
        body, ctype = self.server.live.metrics.text()
        self._send(200, body, ctype)

    def video(self, query: dict, token: str | None) -> None:
        live = self.server.live
        key = query.get("stream", ALL)
        if key != ALL and live.board.index(key) is None:
            self._send(404, f"no stream {key!r}\n".encode(), "text/plain")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        live.feed.watch(key, +1)
        try:
            seq = 0
            while not live.stopping:
                seq, jpeg = live.feed.next(key, seq, HEARTBEAT_S)
                if jpeg is None:
                    continue
                self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
        finally:
            live.feed.watch(key, -1)

    def updates(self, query: dict, token: str | None) -> None:
        live, board = self.server.live, self.server.live.board
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        version, cursor = -1, 0
        while not live.stopping:
            entries, cursor = board.log_since(cursor)
            msg = f"event: state\ndata: {json.dumps(board.snapshot())}\n\n"
            if entries:
                msg += f"event: log\ndata: {json.dumps(entries)}\n\n"
            self.wfile.write(msg.encode())
            version = board.wait(version, HEARTBEAT_S)
            if board.finished:
                return


_ROUTES = {"/": _Handler.page, "/index.html": _Handler.page, "/healthz": _Handler.healthz,
           "/events": _Handler.events, "/metrics": _Handler.metrics, "/video.mjpg": _Handler.video,
           "/updates": _Handler.updates}


class LiveServer:
    """Serves ``board`` (a :class:`runtime.serve.board.Board`) and ``metrics`` on ``host:port``
    from a thread of its own until :meth:`close`. Binding fails at once (a port in use)."""

    def __init__(self, board: Any, metrics: Any, host: str, port: int, *, token: str | None = None,
                 fps: float | None = None, max_clients: int = MAX_CLIENTS,
                 send_timeout: float = SEND_TIMEOUT_S) -> None:
        self.board, self.metrics, self.token = board, metrics, token
        self.max_clients, self.send_timeout = max_clients, send_timeout
        self.stopping = False
        self.clients = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._http = _HTTPServer((host, port), self)  # OSError (in use, no such address) here
        self.feed = JpegFeed(board) if fps is None else JpegFeed(board, fps)
        self.host, self.port = self._http.server_address[:2]
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="tsi-serve", daemon=True)
        self._thread.start()
        log.info("serving http://%s:%d/ (%s)", f"[{self.host}]" if ":" in self.host else self.host,
                 self.port, "token required" if token else "no token")

    def admit(self) -> bool:
        with self._lock:
            if self.clients >= self.max_clients:
                self.refused += 1
                log.warning("refused a client: %d connections already (the most served at once)",
                            self.clients)
                return False
            self.clients += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.clients -= 1

    def close(self) -> None:
        """Stop serving: open connections are ended, the thread joined."""
        self.stopping = True
        self.board.close()
        self._http.shutdown()
        self.feed.close()
        self._http.server_close()
        self._thread.join(2.0)
