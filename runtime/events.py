"""Print the actions a live run recognised (its JSONL), optionally against a ground truth.

    tsi-events artifacts/demo/actions.jsonl [--truth artifacts/demo/sample.json]

The ground truth is the JSON the synthetic generator writes beside a ``--sequence`` video:
``{"fps": .., "segments": [{"label", "start_frame", "end_frame"}, ...]}`` (end exclusive). An event's
frames are the newest frames of its windows; a window covers the ``span_frames`` before it, so an
event is compared shifted back by ``lag`` frames (half the card's span: the window centre). A segment
counts as recognised when an event of its label overlaps it by at least half of the event.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from runtime.cli import OneLineParser

log = logging.getLogger(__name__)

_EVENT_KEYS = {"label": str, "score": (int, float), "start_frame": int, "end_frame": int,
               "start_s": (int, float), "end_s": (int, float)}


def _bad_event(row: dict) -> str | None:
    for key, kind in _EVENT_KEYS.items():
        if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
            return f"an event without a valid {key!r}"
    return None


def read_events(path: str | Path, skipped: list[str] | None = None) -> list[dict]:
    """The events (lines with a ``label``) of a JSONL written by the live runtime; gap and summary
    lines are not events. A line that is not JSON, not an object, or an event with missing or
    mistyped fields is skipped (a run killed mid-line leaves one): its reason is appended to
    ``skipped`` and a warning logged with the count."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not an events file")
    if not path.is_file():
        raise FileNotFoundError(f"no events file at {path} (written by tsi-live --out-jsonl)")
    bad = [] if skipped is None else skipped
    events = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a text (UTF-8) file: {e}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append(f"{path}:{n}: not JSON ({e.msg})")
            continue
        if not isinstance(row, dict):
            bad.append(f"{path}:{n}: a JSON {type(row).__name__}, not an object")
            continue
        if "label" in row:
            problem = _bad_event(row)
            if problem:
                bad.append(f"{path}:{n}: {problem}")
                continue
            events.append(row)
    if bad:
        log.warning("skipped %d bad line(s) of %s (first: %s)", len(bad), path, bad[0])
    return events


def match_segments(events: list[dict], segments: list[dict], lag: int = 0) -> list[tuple[dict, dict | None]]:
    """For each ground-truth segment, the event of the same label that overlaps it most (or None)."""
    out = []
    events = [{**ev, "start_frame": ev["start_frame"] - lag, "end_frame": ev["end_frame"] - lag}
              for ev in events]
    for seg in segments:
        best, best_overlap = None, 0
        for ev in events:
            if ev["label"] != seg["label"]:
                continue
            overlap = min(ev["end_frame"] + 1, seg["end_frame"]) - max(ev["start_frame"], seg["start_frame"])
            length = max(1, ev["end_frame"] + 1 - ev["start_frame"])
            if overlap * 2 >= length and overlap > best_overlap:
                best, best_overlap = ev, overlap
        out.append((seg, best))
    return out


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="tsi-events", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", help="JSONL written by runtime.live --out-jsonl")
    p.add_argument("--truth", help="ground-truth JSON of a synthetic --sequence video")
    p.add_argument("--lag", type=int, default=0,
                   help="frames an event trails its action by: half the model card's span_frames")
    a = p.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    try:
        skipped: list[str] = []
        events = read_events(a.events, skipped)
        if skipped:
            print(f"skipped {len(skipped)} bad line(s) (first: {skipped[0]})")
        print(f"recognised {len(events)} action(s):")
        for ev in events:
            print(f"  {ev['start_s']:7.2f} - {ev['end_s']:7.2f} s  {ev['label']:<14} score {ev['score']:.2f}")
        if a.truth:
            truth = _read_truth(a.truth)
            matches = match_segments(events, truth["segments"], a.lag)
            hits = sum(ev is not None for _, ev in matches)
            print(f"ground truth: {hits}/{len(matches)} segments recognised")
            for seg, ev in matches:
                print(f"  frames {seg['start_frame']:5d}-{seg['end_frame']:5d}  {seg['label']:<14} "
                      f"{'recognised' if ev else 'MISSED'}")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _read_truth(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {p}")
    try:
        truth = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"ground truth {p} is not JSON: {e}") from None
    segments = truth.get("segments") if isinstance(truth, dict) else None
    if not isinstance(segments, list) or not all(
            isinstance(s, dict) and {"label", "start_frame", "end_frame"} <= set(s) for s in segments):
        raise ValueError(f"ground truth {p} needs \"segments\": [{{label, start_frame, end_frame}}, ...] "
                         "(as tsi.data.synthetic --sequence writes)")
    return truth


if __name__ == "__main__":
    sys.exit(main())
