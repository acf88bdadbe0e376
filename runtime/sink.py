"""Where one stream's results go: the optional JSONL (events, gaps, then the summary) and the
annotated video (:class:`LiveOutputs`), with each event also logged."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from runtime.outputs import AtomicVideoWriter, JsonlWriter
from runtime.smoothing import ActionEvent
from runtime.summary import RunSummary

log = logging.getLogger(__name__)

__all__ = ["LiveOutputs"]


class LiveOutputs:
    """The optional JSONL (events, gaps, then the summary) and annotated video of one stream.
    ``fps=None``: the video's frame rate is measured from the frames' capture times (live)."""

    def __init__(self, jsonl: str | Path | None = None, video: str | Path | None = None,
                 fps: float | None = 30.0, stream: str | None = None) -> None:
        self.stream = stream
        self.jsonl = JsonlWriter(jsonl) if jsonl else None
        try:
            self.video = AtomicVideoWriter(video, fps) if video else None
        except BaseException:
            if self.jsonl is not None:
                self.jsonl.close()
            raise

    def _prefix(self) -> str:
        return f"[{self.stream}] " if self.stream else ""

    def event(self, event: ActionEvent) -> None:
        log.info("%saction %-20s %.2f  frames %d-%d  (%.2fs-%.2fs)%s", self._prefix(), event.label,
                 event.score, event.start_frame, event.end_frame, event.start_s, event.end_s,
                 "  [padded window]" if event.padded else "")
        if self.jsonl is not None:
            self.jsonl.write(event.to_dict())

    def gap(self, record: dict[str, Any]) -> None:
        if self.jsonl is not None:
            self.jsonl.write({"gap": record})

    def write_frame(self, image: np.ndarray, t: float | None = None) -> None:
        if self.video is not None:
            self.video.write(image, t)

    def summary(self, summary: RunSummary) -> None:
        if self.jsonl is not None:
            self.jsonl.write({"summary": summary.to_dict()})

    def close(self) -> None:
        """Flush and close every output, the video renamed into place (each one even if another
        fails)."""
        with contextlib.ExitStack() as stack:
            for out in (self.jsonl, self.video):
                if out is not None:
                    stack.callback(out.close)
