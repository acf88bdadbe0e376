"""What a run of one stream did (:class:`RunSummary`), and its log lines."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["RunSummary", "log_summary"]


@dataclass
class RunSummary:
    """What a run of one stream did; ``latency_ms`` maps stage -> {n, mean_ms, p50_ms, p95_ms,
    max_ms}; ``gaps``: outages of a live stream (each closed the open event and reset the window
    and the smoother); ``padded``: a clip shorter than the span classified once with a padded
    window; ``stopped_by``: the signal that stopped the run, if one did."""

    reason: str
    frames: int
    inferences: int
    events: int
    wall_s: float
    fps: float
    capture: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    stream: str | None = None
    gaps: int = 0
    padded: bool = False
    stopped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wall_s"] = round(self.wall_s, 3)
        d["fps"] = round(self.fps, 2)
        return d


def log_summary(s: RunSummary) -> None:
    who = f"[{s.stream}] " if s.stream else ""
    log.info("%sstopped (%s%s): %d frames, %d inferences, %d events, %d gaps in %.1fs (%.1f fps)",
             who, s.reason, f", {s.stopped_by}" if s.stopped_by else "", s.frames, s.inferences,
             s.events, s.gaps, s.wall_s, s.fps)
    c = s.capture
    if c:
        log.info("%scapture: read %d, delivered %d, dropped %d, decode errors %d, reconnects %d, "
                 "stalls %d%s", who, c["read"], c["delivered"], c["dropped"], c["decode_errors"],
                 c["reconnects"], c.get("stalls", 0),
                 f", TRUNCATED (container declares {c['declared_frames']} frames)"
                 if c.get("truncated") else "")
    for stage, st in s.latency_ms.items():
        log.info("%slatency %-10s mean %7.2f ms  p50 %7.2f  p95 %7.2f  (n=%d)", who, stage,
                 st["mean_ms"], st["p50_ms"], st["p95_ms"], st["n"])
