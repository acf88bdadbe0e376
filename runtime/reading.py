"""The reader thread's small decisions, each on its own: when to read the next frame of a file
played at its fps (and when to skip one), and what a run of failed reads means."""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["Pacer", "ReadFailures", "READ", "SKIP", "STOP"]

READ, SKIP, STOP = "read", "skip", "stop"


class Pacer:
    """Plays a file at its own fps, like a camera: frame ``i`` is due ``i / fps`` seconds after
    the reader started. Early: wait for it; more than a frame late (decoding fell behind the
    clock): skip it (``grab`` without retrieving). Disabled (a live source, or every frame): always
    read."""

    def __init__(self, fps: float, enabled: bool, wait: Callable[[float], bool]) -> None:
        self.period = 1.0 / fps
        self.enabled = enabled
        self._wait = wait  # sleeps; True when the source was stopped meanwhile
        self._t0 = time.monotonic()

    def before(self, index: int, can_skip: bool) -> str:
        """READ, SKIP (only when ``can_skip``) or STOP (stopped while waiting)."""
        if not self.enabled:
            return READ
        due = self._t0 + index * self.period
        now = time.monotonic()
        if now < due:
            return STOP if self._wait(due - now) else READ
        if now - due > self.period and can_skip:
            return SKIP
        return READ


class ReadFailures:
    """Consecutive failed reads, classified once it is clear what they are: followed by a good
    read they were decode errors (skipped, counted); ``limit`` in a row, or any at the frame count
    a file declares, they are the end of a file or a dropped live stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # >= 1 (FrameSource checks it)
        self.count = 0

    def failed(self, at_end: bool) -> bool:
        """One more failed read; True when they are the end (or a drop), and the count restarts."""
        self.count += 1
        if self.count < self.limit and not at_end:
            return False
        self.count = 0
        return True

    def recovered(self) -> int:
        """A good read after ``count`` failed ones: those were decode errors; returns how many."""
        n, self.count = self.count, 0
        return n
