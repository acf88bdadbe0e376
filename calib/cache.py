"""TensorRT calibration caches (implicit INT8: TensorRT 10.x, and the only INT8 route on DLA).

Format (what ``IInt8EntropyCalibrator2`` writes and ``trtexec --calib=<file>`` reads)::

    TRT-100300-EntropyCalibration2
    clip: 3c010a14
    <tensor name>: <8 hex digits>        big-endian float32 bits of amax / 127

The header says ``EntropyCalibration2`` whatever method made the ranges (TensorRT's entropy
calibrator, which trtexec uses to read a cache, ignores a cache whose header names another
algorithm); the method is recorded in the key.

Every cache is keyed to its model: a sidecar ``<cache>.json`` holds the sha256 of the ONNX file it
was calibrated on, the model card and the method. :func:`load_cache` refuses a cache whose key does
not match the model (a cache reused for another model is silently wrong INT8). Both files are
written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
from pathlib import Path

import numpy as np

from calib.qdq import QMAX
from runtime.common.errors import CalibrationError
from runtime.card import ModelCard
from runtime.common.files import atomic_write_bytes, atomic_write_text
from runtime.trt_version import TARGET_TRT, TRTCapabilities

log = logging.getLogger(__name__)

KEY_FORMAT = "tsi-calibration-cache"
KEY_VERSION = 1
ALGORITHM = "EntropyCalibration2"
DEFAULT_VERSION_INT = TRTCapabilities.of(TARGET_TRT).version_int  # the target TensorRT's (100300)
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{8})$")


def amax_to_hex(amax: float) -> str:
    """Big-endian float32 bits of amax / 127, as 8 hex digits."""
    return struct.pack(">f", np.float32(np.float32(amax) / np.float32(QMAX))).hex()


def hex_to_scale(text: str) -> np.float32:
    return np.frombuffer(bytes.fromhex(text), dtype=">f4")[0].astype(np.float32)


def format_cache(amax: dict[str, float], *, version_int: int = DEFAULT_VERSION_INT,
                 algorithm: str = ALGORITHM) -> str:
    lines = [f"TRT-{int(version_int)}-{algorithm}"]
    for name in sorted(amax):
        a = float(amax[name])
        if not np.isfinite(a) or a <= 0:
            # an all-zero tensor has no range; any positive scale is exact for it
            log.debug("tensor %s has amax %r; writing the smallest scale instead", name, a)
            a = QMAX * float(np.finfo(np.float32).tiny)
        if "\n" in name or ": " in name:
            raise CalibrationError(f"tensor name {name!r} cannot be written to a calibration cache")
        lines.append(f"{name}: {amax_to_hex(a)}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str | bytes, source: str = "calibration cache") -> tuple[int, str, dict[str, np.float32]]:
    """``(version_int, algorithm, {tensor: scale})``; scale = amax / 127 as float32."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("ascii", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise CalibrationError(f"{source}: empty calibration cache")
    m = _HEADER.match(lines[0].strip())
    if not m:
        raise CalibrationError(f"{source}: first line {lines[0][:60]!r} is not 'TRT-<version>-<algorithm>'")
    scales = {}
    for i, ln in enumerate(lines[1:], start=2):
        mm = _LINE.match(ln.rstrip())
        if not mm:
            raise CalibrationError(f"{source}: line {i} {ln[:60]!r} is not '<tensor>: <8 hex digits>'")
        scales[mm.group(1)] = hex_to_scale(mm.group(2))
    return int(m.group(1)), m.group(2), scales


def key_path(cache_path: str | os.PathLike) -> Path:
    p = Path(cache_path)
    return p.with_name(p.name + ".json")


def make_key(onnx_sha256: str, card: ModelCard, method: str, *, num_clips: int | None = None,
             version_int: int = DEFAULT_VERSION_INT, quantization: dict | None = None) -> dict:
    """The key; ``quantization``: the builder's measured choice (``export.int8_choice``: method,
    agreement, the layers to keep in float, which the implicit build pins to FP32)."""
    return {"format": KEY_FORMAT, "version": KEY_VERSION, "onnx_sha256": onnx_sha256,
            "card": card.to_dict(), "method": method, "num_clips": num_clips,
            "trt_version_int": int(version_int), "quantization": quantization or {}}


def write_cache(cache_path: str | os.PathLike, amax: dict[str, float], *, onnx_sha256: str,
                card: ModelCard, method: str, num_clips: int | None = None,
                version_int: int = DEFAULT_VERSION_INT, quantization: dict | None = None) -> Path:
    """Write the cache and its key sidecar (both atomic; the key first, so a cache on disk always has
    the key it was written with)."""
    key = make_key(onnx_sha256, card, method, num_clips=num_clips, version_int=version_int,
                   quantization=quantization)
    atomic_write_text(key_path(cache_path), json.dumps(key, indent=2, sort_keys=True) + "\n")
    return atomic_write_text(Path(cache_path), format_cache(amax, version_int=version_int))


def write_raw_cache(cache_path: str | os.PathLike, data: bytes, key: dict) -> Path:
    """Write a cache TensorRT produced (``write_calibration_cache``) with its key."""
    parse_cache(data, str(cache_path))  # refuse to store something that is not a cache
    atomic_write_text(key_path(cache_path), json.dumps(key, indent=2, sort_keys=True) + "\n")
    return atomic_write_bytes(Path(cache_path), bytes(data))


def check_key(cache_path: str | os.PathLike, *, onnx_sha256: str, card: ModelCard | None = None,
              method: str | None = None, version_int: int | None = None) -> dict:
    """Raise CalibrationError unless the cache's key matches this model (and method, and the installed
    TensorRT's ``version_int``, when given: a cache is only read by the TensorRT version that it was
    written for)."""
    cache_path = Path(cache_path)
    kp = key_path(cache_path)
    if not kp.is_file():
        raise CalibrationError(f"{cache_path}: no key file {kp.name}; a calibration cache of unknown "
                               "origin is not used (recalibrate with export/build_engine.py --calib-cache)")
    try:
        key = json.loads(kp.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CalibrationError(f"{kp}: unreadable key ({e})") from None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT or key.get("version") != KEY_VERSION:
        raise CalibrationError(f"{kp}: not a {KEY_FORMAT} key (v{KEY_VERSION})")
    problems = []
    if key.get("onnx_sha256") != onnx_sha256:
        problems.append(f"it was calibrated on ONNX sha256 {str(key.get('onnx_sha256'))[:12]}..., "
                        f"this model is {onnx_sha256[:12]}...")
    if card is not None and key.get("card") != card.to_dict():
        diff = sorted(k for k in set(key.get("card") or {}) | set(card.to_dict())
                      if (key.get("card") or {}).get(k) != card.to_dict().get(k))
        problems.append(f"its model card differs in {', '.join(diff)}")
    if method is not None and key.get("method") != method:
        problems.append(f"it holds {key.get('method')} ranges, {method} were asked for")
    if version_int is not None and key.get("trt_version_int") != int(version_int):
        problems.append(f"it was written for TensorRT {version_text(key.get('trt_version_int'))}, the installed "
                        f"TensorRT is {version_text(version_int)} (recalibrate on this version: --calib-dir)")
    if problems:
        raise CalibrationError(f"{cache_path} does not belong to this model: " + "; ".join(problems))
    return key


def load_cache(cache_path: str | os.PathLike, *, onnx_sha256: str, card: ModelCard | None = None,
               method: str | None = None, version_int: int | None = None) -> bytes:
    """The cache bytes for TensorRT, after checking its key (and that it parses, and that its header
    names ``version_int`` too)."""
    cache_path = Path(cache_path)
    if not cache_path.is_file():
        raise CalibrationError(f"calibration cache not found: {cache_path}")
    check_key(cache_path, onnx_sha256=onnx_sha256, card=card, method=method, version_int=version_int)
    data = cache_path.read_bytes()
    header_version, _, _ = parse_cache(data, str(cache_path))
    if version_int is not None and header_version != int(version_int):
        raise CalibrationError(f"{cache_path}: its header says TensorRT {version_text(header_version)}, the "
                               f"installed TensorRT is {version_text(version_int)} (recalibrate on this version)")
    return data


def version_text(version_int) -> str:
    """100300 -> '10.3.0' (the cache header's NV_TENSORRT_VERSION; 8601 -> '8.6.1')."""
    try:
        v = int(version_int)
    except (TypeError, ValueError):
        return f"{version_int!r}"
    if v >= 100000:
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    return f"{v // 1000}.{v // 100 % 10}.{v % 100}"
