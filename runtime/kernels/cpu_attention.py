"""The CPU saliency attention (``saliency_attention.cpp``): compiled once per machine with the
system's C++ compiler, cached, and called through ctypes on float32 numpy arrays.

The library is built with ``-O3`` for the CPU it runs on (``-march=native``, ``-mcpu=native`` on Arm;
``TSI_KERNEL_ARCH`` names another target, e.g. ``x86-64-v3`` for the AVX2 form on an AVX-512 CPU),
with multiply-adds fused (``-ffp-contract=fast``: the exponent's one rounding, see the source)
into :func:`cache_dir` under a name keyed by the source, the compiler, the flags and the CPU, written
to a temporary name there and renamed (two processes building at once both end with one whole file).
Without a compiler, or with ``TSI_CPU_ATTENTION=0``, :func:`available` is False and callers keep
their MatMul-Softmax-MatMul form; :func:`unavailable_reason` says why in one line.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

from runtime.common.files import atomic_path
from runtime.kernels import cache_dir

log = logging.getLogger(__name__)

__all__ = ["KernelError", "available", "build_library", "cache_dir", "hands_over", "least_keys", "library", "saliency_attention",
           "unavailable_reason"]

SOURCE = Path(__file__).with_name("saliency_attention.cpp")
VERSION = 2  # tsi_saliency_attention_version() of the source
MAX_HEAD = 64  # the largest head size the kernel takes
# the fewest keys of an attention the runtime's onnxruntime and OpenVINO sessions hand to the kernel:
# below it the kernel's gain is within the noise and each handover costs a call
MIN_KEYS = 512
DISABLE_ENV = "TSI_CPU_ATTENTION"  # "0": never build or use the kernel
ARCH_ENV = "TSI_KERNEL_ARCH"  # the compiler's -march / -mcpu (default native; x86-64-v3: the 8-wide AVX2 form)
_COMPILERS = ("c++", "g++", "clang++")


def least_keys(min_keys: int = 0) -> int:
    """The fewest keys of an attention handed to the kernel: :data:`MIN_KEYS`, or ``min_keys`` where a
    handover costs more (onnxruntime's cut)."""
    return max(min_keys, MIN_KEYS)


def hands_over(d, dk, dv, lk, lv, min_keys: int = 0) -> bool:
    """Whether the runtime's onnxruntime and OpenVINO sessions give an attention to the kernel: q's,
    k's and v's head sizes ``d``, ``dk``, ``dv`` and k's and v's key counts ``lk``, ``lv`` known
    (ints), equal, the head within 1..:data:`MAX_HEAD`, at least :func:`least_keys` keys."""
    if not all(isinstance(x, int) for x in (d, dk, dv, lk, lv)):
        return False
    return d == dk == dv and lk == lv and 1 <= d <= MAX_HEAD and lk >= least_keys(min_keys)


class KernelError(RuntimeError):
    """The kernel cannot be built or loaded, or was called with arrays it does not take."""


def _flags() -> list[str]:
    target = os.environ.get(ARCH_ENV) or "native"
    arch = f"-mcpu={target}" if platform.machine().lower() in ("aarch64", "arm64") else f"-march={target}"
    return ["-O3", arch, "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared", "-std=c++17"]


def _cpu_id() -> str:
    """The CPU's model and feature flags (so a cache shared by two machines keeps one build each)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [line for line in info if line.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")]
    return "\n".join(dict.fromkeys(keep))


def _compiler() -> str:
    for name in [os.environ.get("CXX", "")] + list(_COMPILERS):
        if name and shutil.which(name):
            return shutil.which(name)
    raise KernelError("no C++ compiler found (c++, g++ or clang++; or set CXX): "
                      "install one (apt-get install g++) to build the CPU attention kernel")


def build_library(name: str, sources: list[Path], *, include: Path | None = None, key: str = "") -> Path:
    """The shared library ``name`` built from ``sources`` (C++) with the kernel's compiler and flags
    (``include``: one more header folder; ``key``: what else decides the build, e.g. that header),
    cached under :func:`cache_dir` by everything that decides it."""
    compiler = _compiler()
    flags = _flags() + ([f"-I{include}"] if include else [])
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256("\0".join([*(s.read_text() for s in sources), key, compiler, version, *flags,
                                        _cpu_id()]).encode()).hexdigest()
    lib = cache_dir() / f"{name}-{digest[:16]}.so"
    if lib.exists():
        return lib
    log.info("building %s: %s", name, lib)
    with atomic_path(lib, suffix=".so") as tmp:
        done = subprocess.run([compiler, *flags, *map(str, sources), "-o", str(tmp)], capture_output=True, text=True)
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no message"])[0][:200]
            raise KernelError(f"{Path(compiler).name} could not build {', '.join(s.name for s in sources)}: {detail}")
    return lib


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None, f"disabled by {DISABLE_ENV}=0"
    try:
        lib = ctypes.CDLL(str(build_library("saliency_attention", [SOURCE])))
    except (KernelError, OSError) as e:
        return None, str(e)
    if lib.tsi_saliency_attention_version() != VERSION:
        return None, f"the built kernel reports interface {lib.tsi_saliency_attention_version()}, not {VERSION}"
    fn = lib.tsi_saliency_attention_layout
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 4 + [ctypes.c_float, ctypes.c_int]
    fn.restype = ctypes.c_int
    return lib, ""


def available() -> bool:
    """The kernel is built (or buildable now) and loaded. Never raises."""
    return _load()[0] is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False (empty when it is True)."""
    return _load()[1]


def library() -> ctypes.CDLL:
    lib, reason = _load()
    if lib is None:
        raise KernelError(f"the CPU attention kernel is unavailable: {reason}")
    return lib


# the kernel's layout bits: that tensor given channel-major, (B, D, L), the layout of the feature map
# it is reshaped from (saliency_attention.cpp's Q_CM, K_CM, V_CM, O_CM)
LAYOUT_BITS = {"q": 1, "k": 2, "v": 4, "out": 8}


def _check(name: str, a: np.ndarray, channel_major: bool) -> tuple[int, int, int]:
    """(B, L, D) of ``a``, stored (B, D, L) where ``channel_major``."""
    form = "(B, D, L)" if channel_major else "(B, L, D)"
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 3 or not a.flags.c_contiguous:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise KernelError(f"{name} must be a C-contiguous float32 array {form}, got {got}")
    b, x, y = a.shape
    return (b, y, x) if channel_major else (b, x, y)


def saliency_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float,
                       out: np.ndarray | None = None, channel_major: tuple[str, ...] = ()) -> np.ndarray:
    """softmax(q k^T * scale) v: q (B, Lq, D), k and v (B, Lk, D), float32, C-contiguous; returns
    (B, Lq, D) (into ``out`` when given). Those of "q", "k", "v", "out" named in ``channel_major``
    are (B, D, L) instead. The GIL is released while it runs."""
    bad = set(channel_major) - set(LAYOUT_BITS)
    if bad:
        raise KernelError(f"channel_major names {sorted(bad)}: only q, k, v and out can be")
    (b, lq, d), (bk, lk, dk), shape_v = (_check(n, a, n in channel_major) for n, a in (("q", q), ("k", k), ("v", v)))
    if (bk, dk) != (b, d) or shape_v != (bk, lk, dk):
        raise KernelError(f"q {q.shape}, k {k.shape} and v {v.shape} do not match: (B, Lq, D), (B, Lk, D), (B, Lk, D)"
                          + (f" (channel-major: {', '.join(channel_major)})" if channel_major else ""))
    if not 1 <= d <= MAX_HEAD:
        raise KernelError(f"head size {d} is outside 1..{MAX_HEAD}")
    if out is None:
        out = np.empty((b, d, lq) if "out" in channel_major else (b, lq, d), np.float32)
    elif _check("out", out, "out" in channel_major) != (b, lq, d):
        raise KernelError(f"out {out.shape} must hold (B, Lq, D) = {(b, lq, d)}")
    layout = sum(LAYOUT_BITS[n] for n in set(channel_major))
    code = library().tsi_saliency_attention_layout(q.ctypes.data, k.ctypes.data, v.ctypes.data, out.ctypes.data,
                                                   b, lq, lk, d, float(scale), layout)
    if code:
        raise KernelError(f"the CPU attention kernel failed (code {code}: "
                          f"{'head size' if code == 1 else 'out of memory'})")
    return out
