"""A benchmark's two result files: ``<out>.json`` ({"meta", "runs"}) and ``<out>.md``, both written
atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from runtime.common.files import atomic_write_text

log = logging.getLogger(__name__)


def write_results(out: str | Path, meta: dict[str, Any], runs: list, markdown: str) -> None:
    out = Path(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown)
    log.info("wrote %s.md and .json", out)
