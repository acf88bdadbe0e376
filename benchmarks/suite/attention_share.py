"""What share of a TSI graph's onnxruntime CPU time is the saliency attention.

onnxruntime's own profiler (``SessionOptions.enable_profiling``: one Chrome-trace event per node
and run, category ``Node``, duration in µs) after one warm-up run. Node names change under
onnxruntime's graph fusions, so attention nodes are found by what they compute: ``MatMul`` /
``FusedMatMul`` / ``Softmax`` with a square (B, L, L) input or output (the scores and
probabilities; L = H x W of the stage), and any ``MultiHeadAttention`` node (the variant). The
share is attention node time / all node time, per stage (L) and in total.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ATTENTION_OPS = ("MatMul", "FusedMatMul", "Softmax")
FUSED_ATTENTION_OPS = ("MultiHeadAttention", "Attention")


def _square_len(shapes: list) -> int | None:
    for entry in shapes or []:
        for dims in entry.values():
            if len(dims) >= 3 and dims[-1] == dims[-2] and dims[-1] > 1:
                return int(dims[-1])
    return None


def attention_length(event: dict) -> int | None:
    """L of an attention node event (None if the node is not attention)."""
    args = event.get("args", {})
    op = args.get("op_name")
    if op in FUSED_ATTENTION_OPS:
        shapes = args.get("input_type_shape") or []
        for entry in shapes[:1]:
            for dims in entry.values():
                return int(dims[-2]) if len(dims) >= 2 else -1
        return -1
    if op in ATTENTION_OPS:
        return _square_len(args.get("input_type_shape")) or _square_len(args.get("output_type_shape"))
    return None


def summarize_profile(events: list[dict], runs: int) -> dict:
    """Per-run node time, attention time (total and per L) and the share, from profiler events."""
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("ph") == "X"]
    total = sum(e["dur"] for e in nodes)
    by_len: dict[int, float] = defaultdict(float)
    for e in nodes:
        length = attention_length(e)
        if length is not None:
            by_len[length] += e["dur"]
    attn = sum(by_len.values())
    return {"runs": runs, "node_ms": total / runs / 1000.0, "attention_ms": attn / runs / 1000.0,
            "share": attn / total if total else None,
            "by_length_ms": {str(k): v / runs / 1000.0 for k, v in sorted(by_len.items())}}


def profile_attention(model_path: str | os.PathLike, x: np.ndarray, *, runs: int = 3,
                      threads: int | None = None) -> dict:
    """Profile ``runs`` runs of the graph on ``x`` (after one unprofiled-in-the-sum warm-up)."""
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import session_options

    with tempfile.TemporaryDirectory(prefix="tsi_ortprof_") as tmp:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: x})
        # the profile holds every run; the warm-up's events come first and are left out of the sums
        for _ in range(runs):
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    node_events = [e for e in events if e.get("cat") == "Node" and e.get("ph") == "X"]
    per_run = len(node_events) // (runs + 1)
    warm_events = node_events[:per_run]
    out = summarize_profile(node_events[per_run:], runs)
    out["warmup_node_ms"] = sum(e["dur"] for e in warm_events) / 1000.0
    return out
