"""What the benchmark ran on: processor, GPU, memory, library versions, load average; and whether
a GPU measurement can run here (None, or why not in one line).

Everything here is read, never assumed: a library that is not importable is listed with the reason.
"""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxsim", "numpy", "cv2", "triton", "matplotlib")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags(names) -> list[str]:
    """Which of ``names`` (/proc/cpuinfo flags: avx2, avx512f, avx512_vnni, ...) this processor has."""
    from runtime.common.cpu import cpu_flag_set

    return [f for f in names if f in cpu_flag_set()]


def memory_gib() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def load_note(loads: list[float], cpus: int | None = None) -> str | None:
    """A sentence for a result file when a 1-min load average in ``loads`` exceeded the usable CPUs
    (the CPU was shared during the run), else None: the figures were taken on a quiet machine."""
    cpus = cpus_usable() if cpus is None else cpus
    if not loads or max(loads) <= cpus:
        return None
    return (f"the 1-min load average reached {max(loads):.1f} on {cpus} usable CPUs during the run: the CPU "
            "was shared with other work, absolute figures are pessimistic and noisy; ratios within one "
            "run are the comparable figures")


def cpus_usable() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as e:  # noqa: BLE001 - any import failure is reported, not raised
            out[name] = f"absent ({type(e).__name__}: {e})"
    out["tensorrt"] = tensorrt_status()[1]
    return out


def tensorrt_status() -> tuple[bool, str]:
    try:
        from runtime.trt_version import import_tensorrt

        trt = import_tensorrt()
    except ImportError as e:  # the project's message explains where TensorRT comes from: its first sentence
        return False, f"absent ({str(e).split('. ')[0]}; {e.__cause__ or 'not importable'})"
    return True, trt.__version__


def gpu_status() -> tuple[bool, str]:
    """(a CUDA device is usable, its name or why not)."""
    try:
        import torch
    except ImportError as e:
        return False, f"torch not importable ({e})"
    if not torch.cuda.is_available():
        build = "CPU-only torch build" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
        return False, f"no CUDA device ({build}; no GPU is lent to this machine)"
    p = torch.cuda.get_device_properties(0)
    return True, f"{p.name} ({p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor})"


# ---- can a GPU part run here: None, or why not in one line ---------------------------------------

def cuda_reason() -> str | None:
    try:
        import torch
    except ImportError as e:
        return f"torch not importable ({e})"
    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return f"no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}, {build})"


def module_reason(name: str) -> str | None:
    try:
        __import__(name)
    except ImportError as e:
        return f"{name} not importable ({e})"
    return None


def ort_cuda_reason() -> str | None:
    why = module_reason("onnxruntime")
    if why:
        return why
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "CUDAExecutionProvider" in have:
        return None
    return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (has {', '.join(have)}; "
            "it comes with onnxruntime-gpu)")


def trt_import_reason() -> str | None:
    ok, why = tensorrt_status()
    return None if ok else f"TensorRT {why}"


def jetson_model() -> str | None:
    text = _read("/proc/device-tree/model")
    return text.strip("\x00\n ") if text and "jetson" in text.lower() else None


def machine_info() -> dict[str, Any]:
    gpu_ok, gpu = gpu_status()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": cpus_usable(),
        "memory_gib": memory_gib(),
        "gpu": gpu if gpu_ok else None,
        "gpu_reason": None if gpu_ok else gpu,
        "jetson": jetson_model(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "load_average_start": load_average(),
    }
