"""The JPEG frames of the video feed (:class:`JpegFeed`), encoded on a thread of their own, only
while a client watches, at most ``fps`` a second and only when the frame is new: recognition
never waits for an encoder or a client."""

from __future__ import annotations

import threading
from typing import Any

import cv2

from runtime.overlay import mosaic

__all__ = ["ALL", "JpegFeed", "SERVE_FPS"]

SERVE_FPS = 10.0  # the most JPEG frames a second a feed is encoded at
QUALITY = 80
ALL = "all"  # the feed of every stream: the mosaic (or the one stream's frame)


class JpegFeed:
    """``board``'s frames as JPEG bytes for each feed key (a stream name, or :data:`ALL`)."""

    def __init__(self, board: Any, fps: float = SERVE_FPS) -> None:
        if not fps > 0:
            raise ValueError(f"the video rate must be > 0 frames a second (got {fps})")
        self.board, self.period = board, 1.0 / fps
        self._cond = threading.Condition()
        self._watch: dict[str, int] = {}  # feed key -> clients watching it
        self._jpeg: dict[str, tuple[int, bytes]] = {}  # feed key -> (sequence, JPEG)
        self._source: dict[str, Any] = {}  # feed key -> the images the JPEG was made from
        self._stop = threading.Event()
        self.encoded = 0
        self._thread = threading.Thread(target=self._run, name="tsi-serve-jpeg", daemon=True)
        self._thread.start()

    def watch(self, key: str, delta: int) -> None:
        """A client starts (+1) or stops (-1) watching feed ``key``."""
        with self._cond:
            self._watch[key] = self._watch.get(key, 0) + delta
            if self._watch[key] <= 0:
                del self._watch[key]
            self.board.watchers = sum(self._watch.values())
            self._cond.notify_all()

    def next(self, key: str, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The feed's newest JPEG newer than sequence ``after``, waiting up to ``timeout`` s."""
        with self._cond:
            self._cond.wait_for(lambda: self._jpeg.get(key, (0, None))[0] > after or self._stop.is_set(),
                                timeout)
            seq, data = self._jpeg.get(key, (after, None))
            return (seq, data) if seq > after else (after, None)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._watch or self._stop.is_set())
                keys = list(self._watch)
            if self._stop.is_set():
                return
            images = self.board.images()
            for key in keys:
                self._encode(key, images)
            self._stop.wait(self.period)

    def _encode(self, key: str, images: list) -> None:
        names = self.board.names
        if key == ALL:
            picked = images
        else:
            i = self.board.index(key)
            picked = [images[i]] if i is not None else []
        if not picked or all(im is None for im in picked):
            return
        prev = self._source.get(key)
        if prev is not None and len(prev) == len(picked) and all(a is b for a, b in zip(prev, picked)):
            return  # nothing new since the last JPEG
        image = picked[0] if len(picked) == 1 else mosaic(picked, names)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        if not ok:
            return
        with self._cond:
            self._source[key] = picked
            seq = self._jpeg.get(key, (0, b""))[0] + 1
            self._jpeg[key] = (seq, buf.tobytes())
            self.encoded += 1
            self._cond.notify_all()
