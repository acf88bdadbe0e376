"""Fold ``trtexec --exportTimes`` / ``--exportProfile`` JSON (from a Jetson or a desktop GPU) into
the benchmark report.

The formats, as TensorRT's ``samples/common/sampleReporting.cpp`` writes them:

- ``--exportTimes=FILE``: a list with one object per inference, all times in ms::

      [ { "startEnqMs": .., "endEnqMs": .., "startH2dMs": .., "endH2dMs": .., "startComputeMs": ..,
          "endComputeMs": .., "startD2hMs": .., "endD2hMs": .., "h2dMs": .., "computeMs": ..,
          "d2hMs": .., "latencyMs": .., "endToEndMs": .. }, ... ]

  (TensorRT 7 and older wrote ``startInMs``/``endInMs``/``inMs``/``outMs``: read as well).
- ``--exportProfile=FILE``: ``[ { "count": N }, { "name": layer, "timeMs": total, "averageMs": per
  run, "percentage": share }, ... ]`` (10.x adds ``medianMs``).

Which of the two a file is, is read from its shape. A file that is neither is an error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


class TrtexecFormatError(ValueError):
    """A file that is not trtexec --exportTimes / --exportProfile JSON."""


def _span(first: dict, last: dict) -> float | None:
    start = first.get("startH2dMs", first.get("startInMs", first.get("startEnqMs")))
    end = last.get("endD2hMs", last.get("endOutMs", last.get("endComputeMs")))
    if start is None or end is None or end <= start:
        return None
    return float(end) - float(start)


def summarize_times(entries: list[dict[str, Any]], source: str = "trtexec times") -> dict[str, Any]:
    """p50/p95/mean of the latency and GPU compute per inference, and the throughput over the trace
    (inferences per second between the first input copy and the last output copy)."""
    if not entries:
        raise TrtexecFormatError(f"{source}: the timing trace is empty")
    out: dict[str, Any] = {"kind": "times", "source": source, "inferences": len(entries)}
    for key, name in (("latencyMs", "latency_ms"), ("computeMs", "compute_ms"),
                      ("h2dMs", "h2d_ms"), ("d2hMs", "d2h_ms"), ("enqueue", "enqueue_ms")):
        if key == "enqueue":
            vals = [e["endEnqMs"] - e["startEnqMs"] for e in entries if "endEnqMs" in e and "startEnqMs" in e]
        else:
            legacy = {"h2dMs": "inMs", "d2hMs": "outMs"}.get(key)
            vals = [e[key] if key in e else e.get(legacy) for e in entries]
            vals = [v for v in vals if v is not None]
        if vals:
            a = np.asarray(vals, np.float64)
            out[name] = {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
                         "mean": float(a.mean()), "n": int(a.size)}
    if "latency_ms" not in out:
        raise TrtexecFormatError(f"{source}: no latencyMs in the timing trace")
    span = _span(entries[0], entries[-1])
    out["throughput_qps"] = (len(entries) - 1) / span * 1000.0 if span and len(entries) > 1 else None
    return out


def summarize_profile(doc: list[dict[str, Any]], source: str = "trtexec profile", top: int = 10) -> dict[str, Any]:
    """Per-run total of the layer times and the ``top`` slowest layers."""
    count = doc[0].get("count")
    layers = doc[1:]
    bad = [i for i, layer in enumerate(layers, 1) if "name" not in layer or "averageMs" not in layer]
    if not isinstance(count, int) or bad:
        raise TrtexecFormatError(f"{source}: not a trtexec layer profile (entry {bad[:1] or [0]} malformed)")
    total = float(sum(layer["averageMs"] for layer in layers))
    ranked = sorted(layers, key=lambda layer: -layer["averageMs"])[:top]
    return {"kind": "profile", "source": source, "runs": count, "layers": len(layers),
            "total_ms": total,
            "top_layers": [{"name": layer["name"], "average_ms": float(layer["averageMs"]),
                            "percentage": float(layer.get("percentage", 100 * layer["averageMs"] / total if total else 0))}
                           for layer in ranked]}


def load_trtexec_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a trtexec JSON export and summarize it (``kind`` = ``times`` or ``profile``)."""
    path = Path(path)
    if not path.is_file():
        raise TrtexecFormatError(f"trtexec JSON not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TrtexecFormatError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, list) or not doc or not all(isinstance(e, dict) for e in doc):
        raise TrtexecFormatError(f"{path}: expected the JSON list trtexec --exportTimes / --exportProfile writes")
    if "count" in doc[0] and len(doc[0]) == 1:
        return summarize_profile(doc, str(path))
    if "latencyMs" in doc[0] or "computeMs" in doc[0]:
        return summarize_times(doc, str(path))
    raise TrtexecFormatError(f"{path}: neither a trtexec timing trace (latencyMs) nor a layer profile (count)")
