"""Before a run reads a clip: do the splits hold what the model needs? And what did they skip?

* The validation split's classes must be the model's: a label beyond them stopped the first
  validation with an IndexError after a whole epoch of training.
* Every video undecodable (or every one of a split) is refused in one line before training.
* A class none of whose training videos decodes is refused: it would stay in the model and in the
  card the runtime shows its labels from, never trained. Fix its videos or leave the class out.
* A class none of whose validation videos decodes is warned about, one line per class: its clips
  are served by other classes' videos (the dataset's fallback), so its accuracy is not measured.
  The run's ``data_report.json`` lists it, every undecodable file and the replaced clips.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.common.files import atomic_write_text
from tsi.cli import UsageError
from tsi.data.datasets import ClipDataset

log = logging.getLogger(__name__)


def check_classes(ds: ClipDataset, labels: Sequence[str], flag: str) -> None:
    """Refuse a split whose classes are not the model's ``labels``."""
    labels, mine = tuple(labels), tuple(ds.classes)
    if mine == labels:
        return
    beyond = sorted({s.label for s in ds.samples if s.label >= len(labels)})
    if beyond or mine[: len(labels)] != labels[: len(mine)]:
        what = f"label {beyond[0]} is beyond" if beyond else f"classes {list(mine[:5])} differ from"
        raise UsageError(f"{flag}: {ds.name}: {what} the model's {len(labels)} classes {list(labels[:5])}; "
                         "both splits need the same classes (give --labels)")


def check_decodable(ds: ClipDataset, flag: str, *, refuse_classes: bool) -> list[str]:
    """Probe one decodable video per class (see :meth:`ClipDataset.unreadable_classes`). Refuses a
    split with no decodable video at all; a class without one is refused (``refuse_classes``) or
    warned about in one line. Returns those classes."""
    dead = ds.unreadable_classes()
    if ds.skipped == len(ds):
        raise UsageError(f"{flag}: none of the {len(ds)} videos of {ds.name} decodes "
                         f"(e.g. {', '.join(ascii(f) for f in ds.skipped_files[:2])})")
    if dead and refuse_classes:
        raise UsageError(f"{flag}: class(es) {dead[:5]} of {ds.name} have no decodable video (e.g. "
                         f"{ascii(_first_bad(ds, dead[0]))}): the model would keep them untrained; fix "
                         "those videos, or leave the classes out (their folders or --labels)")
    for name in dead:
        log.warning("%s: class %r has no decodable video: its clips are replaced by other classes' "
                    "and its accuracy is not measured (listed in data_report.json)", ds.name, name)
    return dead


def _first_bad(ds: ClipDataset, name: str) -> str:
    label = ds.classes.index(name)
    return next(str(s.path) for s in ds.samples if s.label == label)


def split_report(ds: ClipDataset, dead: Sequence[str]) -> dict[str, Any]:
    """What a split left out or replaced, for ``data_report.json`` (JSON escapes a file name that
    is not UTF-8, so every path can be listed)."""
    return {"videos": len(ds), "missing": list(ds.missing_files), "undecodable": ds.skipped_files,
            "classes_without_a_decodable_video": list(dead), "replaced_clips": ds.replaced_classes()}


def write_data_report(out: Path, report: dict[str, Any]) -> None:
    """``data_report.json``: what the splits left out, skipped and replaced so far (atomically);
    replaced validation clips are warned about in one line per class, when their number grows."""
    path = out / "data_report.json"
    try:
        before = json.loads(path.read_text(encoding="utf-8"))["val"]["replaced_clips"] if path.is_file() else {}
    except (ValueError, KeyError, TypeError):
        before = {}
    for name, n in report["val"]["replaced_clips"].items():
        if n != before.get(name):
            log.warning("validation: %d clip(s) of class %r were replaced by other videos (theirs are "
                        "undecodable; see %s)", n, name, path)
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")
