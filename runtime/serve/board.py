"""What the runtime shows the server (:class:`Board`): each stream's state, top-k, rates and
counts, the newest annotated frame, and a bounded log of events opening and closing.

The runtime thread writes (:meth:`Board.publish`, the recogniser's listener calls, :meth:`Board.ended`):
each is a few assignments under a lock, at most every ``PUBLISH_S`` per stream, and never waits on a
client. The server's threads read copies (:meth:`Board.snapshot`, :meth:`Board.health`) and wait on
:meth:`Board.wait` for something new."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["Board", "DOWN_LIMIT_S", "GAP_S", "LOG_KEPT", "STATES"]

GAP_S = 2.0  # a stream with no frame for this long is in a gap (stalled, between files' frames)
DOWN_LIMIT_S = 30.0  # /healthz: unhealthy once every stream has been down this long
LOG_KEPT = 200  # events kept for /events and a page that opens late
PUBLISH_S = 0.1  # the most often a stream's numbers are copied
STATES = ("starting", "live", "gap", "reconnecting", "ended")


def _rounded(s: float | None) -> float | None:
    return None if s is None else round(s, 1)


class _Stream:
    def __init__(self, name: str, t0: float) -> None:
        self.name = name
        self.top: list[tuple[str, float]] = []
        self.fps = 0.0
        self.counts: dict[str, int] = {}
        self.capture: dict[str, Any] = {}
        self.action: tuple[str, float] | None = None
        self.image: np.ndarray | None = None
        self.last_frame: float | None = None  # monotonic time of its newest frame
        self.frames = 0  # frames recognised when last published
        self.connecting = False
        self.ended: str | None = None  # the reason it ended
        self.t0 = t0
        self.published = 0.0
        self.seen: dict[str, int] = {}  # latency samples already given to the metrics

    def state(self, now: float) -> str:
        if self.ended is not None:
            return "ended"
        if self.connecting:
            return "reconnecting"
        if self.last_frame is None:
            return "starting"
        return "live" if now - self.last_frame < GAP_S else "gap"

    def down_s(self, now: float) -> float | None:
        """Seconds since its last frame (since the start if none), None while live."""
        if self.state(now) == "live":
            return None
        return now - (self.last_frame if self.last_frame is not None else self.t0)


class Board:
    """The shared view of a run's streams (named ``names``, in order). ``metrics``: a
    :class:`runtime.serve.metrics.Metrics` given each new latency sample."""

    def __init__(self, names: Sequence[str], *, down_limit: float = DOWN_LIMIT_S,
                 metrics: Any = None, log_kept: int = LOG_KEPT) -> None:
        if not down_limit > 0:
            raise ValueError(f"down limit must be > 0 s (got {down_limit})")
        now = time.monotonic()
        self.names = tuple(names)
        self.down_limit = float(down_limit)
        self.metrics = metrics
        self._streams = [_Stream(n, now) for n in self.names]
        self._index = {n: i for i, n in enumerate(self.names)}
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=log_kept)
        self._logged = 0  # entries ever logged (an SSE client's cursor)
        self._cond = threading.Condition()
        self._version = 0
        self.watchers = 0  # clients watching video: frames are annotated only while > 0
        self.finished = False

    # -- the runtime thread ----------------------------------------------------------------------
    def publish(self, i: int, rec: Any, src: Any, image: np.ndarray | None) -> None:
        """Stream ``i``'s recogniser and source after a loop of the scheduler; ``image``: its
        newest annotated frame (None: none new)."""
        st = self._streams[i]
        now = time.monotonic()
        if self.metrics is not None:
            self.metrics.observe(st.name, rec.latency, st.seen)
        with self._cond:
            if image is not None:
                st.image = image
            if rec.frames != st.frames:
                st.frames, st.last_frame = rec.frames, now
            connecting = bool(getattr(src, "connecting", False))
            if connecting != st.connecting:
                st.connecting = connecting
                st.published = 0.0
            if now - st.published < PUBLISH_S:
                return
            st.published = now
            st.top = list(rec.top)
            st.fps = float(rec.fps)
            st.action = rec.detector.current
            st.counts = {"frames": rec.frames, "inferences": rec.inferences, "events": rec.events,
                         "gaps": rec.gaps}
            st.capture = src.stats.as_dict()
            self._changed()

    def opened(self, rec: Any, label: str, score: float, frame: int, t_s: float) -> None:
        self._add({"kind": "open", "stream": self._name(rec), "label": label,
                   "score": round(float(score), 4), "start_frame": frame, "start_s": round(t_s, 3)})

    def closed(self, rec: Any, event: Any) -> None:
        self._add({"kind": "close", "stream": self._name(rec), **event.to_dict()})

    def ended(self, i: int, rec: Any, src: Any, reason: str) -> None:
        st = self._streams[i]
        with self._cond:
            st.published = 0.0
        self.publish(i, rec, src, None)
        with self._cond:
            st.ended = reason
            self._changed()

    def close(self) -> None:
        """The run is over: every waiting client wakes and leaves."""
        with self._cond:
            self.finished = True
            self._changed()

    # -- the server's threads ----------------------------------------------------------------
    def wait(self, version: int, timeout: float) -> int:
        """Wait up to ``timeout`` s for a change after ``version``; the current version."""
        with self._cond:
            if self._version == version and not self.finished:
                self._cond.wait(timeout)
            return self._version

    def snapshot(self) -> dict[str, Any]:
        """Every stream's state, top-k, rates and counts (a copy, JSON-ready)."""
        now = time.monotonic()
        with self._cond:
            return {"streams": [{
                "name": st.name, "state": st.state(now), "fps": round(st.fps, 2),
                "top": [{"label": lb, "score": round(float(sc), 4)} for lb, sc in st.top],
                "action": st.action[0] if st.action else None,
                "counts": dict(st.counts), "capture": dict(st.capture),
                "down_s": _rounded(st.down_s(now)),
            } for st in self._streams], "logged": self._logged}

    def log_since(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """The log entries after ``cursor`` (those still kept) and the new cursor."""
        with self._cond:
            new = min(self._logged - cursor, len(self._log))
            return (list(self._log)[len(self._log) - new:] if new > 0 else []), self._logged

    def images(self) -> list[np.ndarray | None]:
        with self._cond:
            return [st.image for st in self._streams]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless every stream has been down (not live) longer than ``down_limit``."""
        now = time.monotonic()
        with self._cond:
            down = {st.name: st.down_s(now) for st in self._streams if st.state(now) != "live"}
            ok = len(down) < len(self._streams) or min(down.values()) <= self.down_limit
        return ok, {"status": "ok" if ok else "unhealthy",
                    "down_s": {k: _rounded(v) for k, v in down.items()},
                    "limit_s": self.down_limit}

    def index(self, name: str) -> int | None:
        return self._index.get(name)

    # -- inside ------------------------------------------------------------------------------
    def _name(self, rec: Any) -> str:
        return rec.name if rec.name is not None else self.names[0]

    def _add(self, entry: dict[str, Any]) -> None:
        entry["wall_time"] = round(time.time(), 3)
        with self._cond:
            self._log.append(entry)
            self._logged += 1
            self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()
