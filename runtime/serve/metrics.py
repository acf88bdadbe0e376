"""``/metrics`` in Prometheus' text format, by ``prometheus_client`` (the ``serve`` extra): per
stream, the capture's and the recogniser's counters (read at each scrape from the
:class:`runtime.serve.board.Board`), its state, and a histogram of each stage's latency (every
sample the recogniser timed)."""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["Metrics", "require_prometheus"]

PREFIX = "tsi"
# Prometheus name (without prefix and _total) -> (where in a board's stream, key, help)
_COUNTERS = {
    "frames_read": ("capture", "read", "frames read from the source"),
    "frames_delivered": ("capture", "delivered", "frames handed to recognition"),
    "frames_dropped": ("capture", "dropped", "frames dropped because recognition was behind"),
    "decode_errors": ("capture", "decode_errors", "failed reads and malformed frames skipped"),
    "reconnects": ("capture", "reconnects", "successful reconnections of a live stream"),
    "stalls": ("capture", "stalls", "reads abandoned after the stall timeout"),
    "frames_recognised": ("counts", "frames", "frames pushed into the window"),
    "inferences": ("counts", "inferences", "model inferences"),
    "events": ("counts", "events", "action events ended"),
    "gaps": ("counts", "gaps", "outages that reset the window"),
}
# seconds; a CPU inference of the demo model is ~10 ms, a camera frame 33 ms
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def require_prometheus() -> Any:
    """``prometheus_client``, or an error saying which extra installs it."""
    try:
        import prometheus_client
    except ImportError:
        raise ImportError("--serve needs prometheus_client: pip install \"tsi-edge[serve]\" "
                          "(or pip install prometheus_client)") from None
    return prometheus_client


class Metrics:
    """A registry of its own (several runs in one process do not share counters)."""

    def __init__(self) -> None:
        pc = require_prometheus()
        self.registry = pc.CollectorRegistry()
        self.board: Any = None
        self._latency = pc.Histogram(f"{PREFIX}_stage_latency_seconds",
                                     "per-stage latency: capture, preprocess, inference, end_to_end",
                                     ["stream", "stage"], buckets=BUCKETS, registry=self.registry)
        self.registry.register(_BoardCollector(self))
        self._pc = pc

    def observe(self, stream: str, latency: Any, seen: dict[str, int]) -> None:
        """Give the histograms the samples of ``latency`` (a :class:`runtime.latency.LatencyStats`)
        not seen yet; ``seen`` (stage -> count) is updated."""
        for stage in latency.stages:
            n = latency.count(stage)
            if n == seen.get(stage, 0):
                continue
            h = self._latency.labels(stream, stage)
            for ms in latency.since(stage, seen.get(stage, 0)):
                h.observe(float(ms) / 1e3)
            seen[stage] = n

    def text(self) -> tuple[bytes, str]:
        """The exposition and its content type."""
        return self._pc.generate_latest(self.registry), self._pc.CONTENT_TYPE_LATEST


class _BoardCollector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from runtime.serve.board import STATES

        board = self.metrics.board
        if board is None:
            return
        streams = board.snapshot()["streams"]
        for name, (where, key, doc) in _COUNTERS.items():
            fam = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["stream"])
            for st in streams:
                fam.add_metric([st["name"]], float(st[where].get(key, 0)))
            yield fam
        state = GaugeMetricFamily(f"{PREFIX}_stream_state", "1 for the stream's current state",
                                  labels=["stream", "state"])
        fps = GaugeMetricFamily(f"{PREFIX}_stream_fps", "frames per second recognised", labels=["stream"])
        for st in streams:
            for s in STATES:
                state.add_metric([st["name"], s], 1.0 if st["state"] == s else 0.0)
            fps.add_metric([st["name"]], st["fps"])
        yield state
        yield fps
        healthy, _ = board.health()
        yield GaugeMetricFamily(f"{PREFIX}_healthy", "1 while /healthz answers 200", value=1.0 if healthy else 0.0)
