"""A benchmark's two result files: ``<out>.json`` ({"meta", "runs"}) and ``<out>.md``, both written
atomically; the command a result's ``.md`` says wrote it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from runtime.common.files import atomic_write_text

log = logging.getLogger(__name__)


def write_results(out: str | Path, meta: dict[str, Any], runs: list, markdown: str) -> None:
    out = Path(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown)
    log.info("wrote %s.md and .json", out)


_COMMAND_RE = re.compile(r"(?:Command|Written by|Runs):?\s*`([^`]+)`")


def command_of(md: Path) -> str | None:
    """The first command a result's .md names after "Command:", "Written by" or "Runs:"."""
    if not md.is_file():
        return None
    m = _COMMAND_RE.search(md.read_text(encoding="utf-8"))
    return m.group(1) if m else None
