"""systemd's notify protocol for ``Type=notify`` units: READY=1 once the run is up, then WATCHDOG=1
every half ``WatchdogSec`` while :meth:`runtime.serve.board.Board.health` says healthy (what
``/healthz`` answers), so systemd restarts a run whose streams are all down. Nothing happens
outside systemd (no ``$NOTIFY_SOCKET``)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Watchdog", "sd_notify"]


def sd_notify(message: str) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; False when there is none or it fails."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # the abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), address)
        return True
    except OSError as e:
        log.warning("systemd notify %s failed: %s", message, e)
        return False


class Watchdog:
    """READY=1 now; WATCHDOG=1 pings while ``board`` is healthy, until :meth:`close`."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sd_notify("READY=1")
        usec = os.environ.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0 and os.environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid()):
            self._thread = threading.Thread(target=self._run, args=(int(usec) / 2e6,),
                                            name="tsi-watchdog", daemon=True)
            self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            healthy, detail = self.board.health()
            if healthy:
                sd_notify("WATCHDOG=1")
            else:
                log.warning("unhealthy (%s): not pinging systemd's watchdog", detail["down_s"])

    def close(self) -> None:
        sd_notify("STOPPING=1")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
