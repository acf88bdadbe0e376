"""The records a frame source hands out: each :class:`Frame` (with the :class:`Gap` of an outage
just before it, if any), the source's :class:`CaptureStats`, and :class:`EndOfStream`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["CaptureStats", "EndOfStream", "Frame", "Gap", "as_bgr"]


class EndOfStream(Exception):
    """The source has ended (end of file, or stopped) and every buffered frame was delivered."""


@dataclass
class CaptureStats:
    """``read``: frames obtained from the source; ``delivered``: handed to the consumer;
    ``dropped``: discarded because the consumer was too slow (after the end,
    ``read == delivered + dropped``); ``decode_errors``: failed reads and malformed frames skipped;
    ``reconnects``: successful reconnections of a live stream; ``stalls``: reads abandoned after
    ``stall_timeout``; ``declared_frames``: the frame count a file's container declares (0: none or
    a live source); ``truncated``: a file that ended before it (frames decoded < declared)."""

    read: int = 0
    delivered: int = 0
    dropped: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    stalls: int = 0
    declared_frames: int = 0
    truncated: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Gap:
    """An outage of a live stream, carried by the first frame after it. ``reason``: ``dropped``
    (reads failed), ``stalled`` (a read blocked for ``stall_timeout``), ``not_up`` (not up at
    start) or ``server_down`` (a served model's server went away: ``runtime.scheduler``); ``start_s`` / ``end_s``: stream times (``pts_s``) of the last frame before it (the
    source's start if none) and of the frame after it; ``attempts``: connection attempts made."""

    reason: str
    start_s: float
    end_s: float
    attempts: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def ending_at(self, pts_s: float) -> "Gap":
        """This outage, ended by the frame at stream time ``pts_s`` (the frame that carries it)."""
        return Gap(self.reason, self.start_s, pts_s, self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "start_s": round(self.start_s, 6),
                "end_s": round(self.end_s, 6), "duration_s": round(self.duration_s, 6),
                "attempts": self.attempts}


@dataclass(slots=True)
class Frame:
    """One BGR frame. ``timestamp``: ``time.monotonic()`` when it was captured; ``pts_s``: its
    position in the stream in seconds (file: index / fps; live: since the source started);
    ``decode_ms``: time spent in ``read()``; ``gap``: the outage just before this frame, if any."""

    index: int
    timestamp: float
    pts_s: float
    image: np.ndarray
    decode_ms: float = 0.0
    gap: Gap | None = None


def as_bgr(img: Any) -> np.ndarray | None:
    """The frame as (H, W, 3) uint8, or None if it is malformed."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.size == 0:
        return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        return None
    return img
