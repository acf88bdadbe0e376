"""The project's onnxruntime operations, domain ``tsi.cpu``: the saliency attention
(``ort_saliency_op.cpp``: the kernel of :mod:`runtime.kernels.cpu_attention`) and a CTI unit in one
pass (``ort_cross_temporal_op.cpp``); their domain and names (:func:`names`, :func:`cti_name`) are
the library's. Built with the kernel into one library against onnxruntime's C API header
(:mod:`runtime.kernels.ort_header`) with the kernel's compiler and flags, cached the same way.
Sessions load it with ``SessionOptions.register_custom_ops_library(path())``.

Unavailable (:func:`available` False, :func:`unavailable_reason` says why in one line) without the
kernel, without the header, or with a header newer than the onnxruntime installed (its API table
would be missing).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from runtime.kernels import cpu_attention, ort_header

__all__ = ["available", "cti_name", "names", "path", "unavailable_reason"]

SOURCE = Path(__file__).with_name("ort_saliency_op.cpp")
SOURCES = [SOURCE, SOURCE.with_name("ort_cross_temporal_op.cpp")]
COMMON = SOURCE.with_name("ort_common.h")  # included by both: part of the build's key


def _runtime_api() -> int:
    import onnxruntime

    return int(onnxruntime.__version__.split(".")[1])  # 1.N has C API version N


@functools.lru_cache(maxsize=1)
def _built() -> tuple[Path | None, str]:
    if not cpu_attention.available():
        return None, cpu_attention.unavailable_reason()
    folder = ort_header.find()
    if folder is None:
        return None, (f"onnxruntime's C API header ({ort_header.HEADER}) is not found: "
                      f"python -m runtime.kernels.ort_header fetches it (or set {ort_header.INCLUDE_ENV})")
    header, ours = ort_header.api_version(folder), _runtime_api()
    if header is None or header > ours:
        return None, f"{folder / ort_header.HEADER} has C API version {header}, newer than onnxruntime's {ours}"
    try:
        lib = cpu_attention.build_library("ort_saliency_op", [cpu_attention.SOURCE, *SOURCES], include=folder,
                                          key=(folder / ort_header.HEADER).read_text(errors="replace") + COMMON.read_text())
    except cpu_attention.KernelError as e:
        return None, str(e)
    except OSError as e:  # a source missing from the installed package
        return None, f"the operations' sources cannot be read: {e}"
    return lib, ""


def available() -> bool:
    """The library is built (or buildable now). Never raises."""
    return _built()[0] is not None


def unavailable_reason() -> str:
    return _built()[1]


@functools.lru_cache(maxsize=1)
def names() -> tuple[str, str]:
    """(domain, op type) of the operation, as the built library registers them."""
    lib = ctypes.CDLL(str(path()))
    out = []
    for fn in (lib.tsi_ort_op_domain, lib.tsi_ort_op_name):
        fn.restype = ctypes.c_char_p
        out.append(fn().decode())
    return out[0], out[1]


@functools.lru_cache(maxsize=1)
def cti_name() -> str:
    """The op type of the CTI operation (its domain is :func:`names`' first)."""
    fn = ctypes.CDLL(str(path())).tsi_ort_cti_name
    fn.restype = ctypes.c_char_p
    return fn().decode()


def path() -> Path:
    lib, reason = _built()
    if lib is None:
        raise cpu_attention.KernelError(f"the onnxruntime kernel operation is unavailable: {reason}")
    return lib
