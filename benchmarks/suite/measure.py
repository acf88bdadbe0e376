"""One row of the report: build the backend, then time it, count its memory, score it.

A row is a dict (schema in docs/benchmarks.md). ``status`` is ``measured`` or ``absent``; an absent
row carries ``reason`` and no figure. Figures are only ever what ran here.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from benchmarks.common.machine import load_average
from benchmarks.suite.runners import Absent, Runner
from benchmarks.common.timing import PeakMemory, measure_latency, measure_throughput

log = logging.getLogger(__name__)


def base_row(spec, backend: str, precision: str, device: str, cost: dict, variant: str = "standard") -> dict:
    return {"key": spec.key, "group": spec.group, "model": spec.arch, "family": spec.family,
            "frames": spec.cfg.frames, "size": spec.cfg.input_size, "width": spec.cfg.base_width,
            "classes": spec.cfg.num_classes, "weights": "trained" if spec.trained else "random",
            "checkpoint": str(spec.checkpoint) if spec.checkpoint else None,
            "backend": backend, "device": device, "precision": precision, "variant": variant,
            # PyTorch rows run the config's attention implementation; ONNX rows the exported matmul form
            "attention": spec.cfg.attention if backend.startswith("pytorch") else
            ("MultiHeadAttention" if variant == "mha" else "matmul"),
            "status": "absent", "reason": None, **cost,
            "top1": None, "top1_reason": None, "eval_clips": None,
            "latency_ms": None, "throughput": [], "peak_mem_mib": None, "peak_mem_reason": None,
            "file_bytes": None, "file_what": None, "setup_s": None, "first_call_s": None,
            "loadavg": None, "power": None, "notes": ""}


def absent(row: dict, reason: str) -> dict:
    row.update(status="absent", reason=reason)
    log.info("%s %s %s %s: absent (%s)", row["key"], row["backend"], row["precision"], row["variant"], reason)
    return row


def measure_row(row: dict, make_runner: Callable[[], Runner], *, input_shape: tuple, repeats: int,
                batches: list[int], min_time: float, eval_set=None, eval_batch: int = 16,
                no_top1_reason: str | None = None, power=None, cuda: bool = False) -> dict:
    """Fill ``row`` by running ``make_runner()``; a backend that raises Absent (or fails) makes the
    row absent with that reason."""
    row["loadavg"] = load_average()
    rng = np.random.default_rng(0)
    try:
        with PeakMemory(cuda=cuda) as mem:
            runner = make_runner()
            x1 = rng.standard_normal((1, *input_shape)).astype(np.float32)
            t0 = time.perf_counter()
            runner(x1)
            row["first_call_s"] = time.perf_counter() - t0
            row["latency_ms"] = measure_latency(lambda: runner(x1), repeats=repeats, warmup=1)
            tp = [{"batch": 1, "clips_per_s": 1000.0 / row["latency_ms"]["mean"], "runs": repeats,
                   "seconds": row["latency_ms"]["mean"] * repeats / 1000.0}]
            for b in batches:
                xb = rng.standard_normal((b, *input_shape)).astype(np.float32)
                if power is not None:
                    with power() as sampler:
                        r = measure_throughput(lambda: runner(xb), b, min_time=min_time)
                    row["power"] = _power(sampler, r)
                else:
                    r = measure_throughput(lambda: runner(xb), b, min_time=min_time)
                tp.append(r)
                del xb
            row["throughput"] = tp
    except Absent as e:
        return absent(row, str(e))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a backend that fails here is reported, not estimated
        log.exception("%s %s %s failed", row["key"], row["backend"], row["precision"])
        return absent(row, f"failed here: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    row.update(status="measured", peak_mem_mib=mem.mib, peak_mem_reason=mem.reason, file_bytes=runner.file_bytes,
               file_what=runner.file_what, setup_s=runner.setup_s, device=runner.device)
    if eval_set is not None:
        row["top1"] = top1_of(runner, eval_set, eval_batch)
        row["eval_clips"] = int(len(eval_set.labels))
    else:
        row["top1_reason"] = no_top1_reason
    log.info("%s %s %s %s: p50 %.1f ms, %s clips/s%s", row["key"], row["backend"], row["precision"], row["variant"],
             row["latency_ms"]["p50"], ", ".join(f"{t['clips_per_s']:.2f}@{t['batch']}" for t in row["throughput"]),
             f", top-1 {row['top1']:.1f}" if row["top1"] is not None else "")
    return row


def top1_of(runner, eval_set, batch: int) -> float:
    from benchmarks.suite.evaldata import top1

    return top1(runner, eval_set, batch)


def _power(sampler, r: dict) -> dict:
    try:
        return sampler.result(clips=r["batch"] * (r["runs"] + 1))
    except ValueError as e:
        return {"reason": str(e)}
