"""Compiled CPU kernels of the runtime (built on the machine that runs them)."""

import os
from pathlib import Path

CACHE_ENV = "TSI_KERNEL_CACHE"  # where built libraries (and fetched headers) go


def cache_dir() -> Path:
    """The kernels' cache: ``$TSI_KERNEL_CACHE``, default ``~/.cache/tsi-edge/kernels``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tsi-edge" / "kernels")
