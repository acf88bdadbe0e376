"""The processor's feature flags, as Linux lists them in /proc/cpuinfo (read once)."""

from __future__ import annotations

import functools
import platform

__all__ = ["VNNI_FLAGS", "cpu_flag_set", "has_vnni"]

# the 8-bit dot-product instructions of x86 (AVX512-VNNI, AVX-VNNI, AMX): with them an INT8
# convolution's 8-bit products accumulate without saturating
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_flag_set() -> frozenset[str]:
    """The "flags" (x86) or "Features" (Arm) of the first processor; empty where there is no
    /proc/cpuinfo to read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return frozenset()
    line = next((x for x in text.splitlines() if x.startswith(("flags", "Features"))), "")
    return frozenset(line.split(":", 1)[1].split()) if ":" in line else frozenset()


def has_vnni() -> bool | None:
    """Whether this x86 processor has one of :data:`VNNI_FLAGS`; None where that cannot be told (not
    x86, or no flags to read)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686") or not cpu_flag_set():
        return None
    return any(f in cpu_flag_set() for f in VNNI_FLAGS)
