"""What the runtime's command lines share: a parser whose errors are one line, and stop signals
that finish a run cleanly."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any, Callable, NoReturn

__all__ = ["OneLineParser", "install_stop_handlers"]

log = logging.getLogger(__name__)


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line on stderr (exit status 2)
    instead of the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def ignore_stop_signals() -> None:
    """For worker processes: the parent decides when to stop, so Ctrl-C, SIGTERM and a hang-up
    (sent to the whole process group or cgroup) leave a worker finishing its current item; the
    parent ends it (or SIGKILL does)."""
    for name in _STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)


def install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGINT (Ctrl-C), SIGTERM (systemd, docker stop) and SIGHUP (a closed terminal / SSH
    session) all set ``stop``: the run finishes, writes its summary and closes its outputs. A
    later signal only says so (nothing is cut short, so the outputs are kept). Returns the
    function that puts the previous handlers back; a no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            stop.signal_name = name  # type: ignore[attr-defined]
            log.warning("%s: finishing and writing the outputs", name)
            stop.set()
        else:
            log.warning("%s: already finishing; the outputs are being written (this takes a "
                        "moment; SIGKILL would lose the annotated video)", name)

    previous = {}
    for name in _STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
