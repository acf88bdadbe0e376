"""Where a CPU backend's time goes, per operation type: OpenVINO's per-layer counters
(``PERF_COUNT``) and onnxruntime's profiler, each from its own compilation / session so the counters
stay out of timed calls. ms per call, averaged over ``calls`` calls after one untimed call."""

from __future__ import annotations

import json
from pathlib import Path


def openvino_ms(model, feed: dict, threads: int, calls: int, *, prepare: bool) -> dict[tuple[str, str], float]:
    """{(layer type, kernel): ms per call} of an ``openvino.Model`` compiled for the CPU with
    ``PERF_COUNT``; ``prepare``: first rewritten as the runtime's OpenVINO backend does
    (``runtime.backends.openvino_graph.prepare_for_cpu``)."""
    import openvino

    if prepare:
        from runtime.backends.openvino_graph import prepare_for_cpu

        prepare_for_cpu(model)
    compiled = openvino.Core().compile_model(model, "CPU", {
        "PERF_COUNT": "YES", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads})
    request, total = compiled.create_infer_request(), {}
    request.infer(feed)
    for _ in range(calls):
        request.infer(feed)
        for info in request.profiling_info:
            key = (info.node_type, info.exec_type)
            total[key] = total.get(key, 0.0) + info.real_time.total_seconds() * 1000 / calls
    return total


def onnxruntime_ms(sessions: list, run, calls: int) -> dict[str, float]:
    """{operator: ms per call} from onnxruntime sessions opened with profiling on (one model may be
    several sessions: the runtime's kernel session); ``run()`` makes one call of the model. The first
    call's events (each session's first ``model_run``) are left out; each profile file is read and
    removed."""
    for _ in range(calls + 1):
        run()
    total: dict[str, float] = {}
    for s in sessions:
        path = Path(s.end_profiling())
        events = json.loads(path.read_text())
        path.unlink()
        runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
        first_end = runs[0][1] if runs else -1
        for event in events:
            if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] > first_end:
                op = event.get("args", {}).get("op_name", "?")
                total[op] = total.get(op, 0.0) + event["dur"] / 1000 / calls
    return total


def top(profiles: dict[str, dict], n: int) -> list:
    """The ``n`` keys with the largest time in any of ``profiles`` ({column: {key: ms}})."""
    keys = {k for p in profiles.values() for k in p}
    return sorted(keys, key=lambda k: -max(p.get(k, 0.0) for p in profiles.values()))[:n]


__all__ = ["onnxruntime_ms", "openvino_ms", "top"]
