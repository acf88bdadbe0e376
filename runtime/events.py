"""Print the actions a live run recognised (its JSONL), optionally against a ground truth.

    python -m runtime.events artifacts/demo/actions.jsonl [--truth artifacts/demo/sample.json]

The ground truth is the JSON the synthetic generator writes beside a ``--sequence`` video:
``{"fps": .., "segments": [{"label", "start_frame", "end_frame"}, ...]}`` (end exclusive). An event's
frames are the newest frames of its windows; a window covers the ``span_frames`` before it, so an
event is compared shifted back by ``lag`` frames (half the card's span: the window centre). A segment
counts as recognised when an event of its label overlaps it by at least half of the event.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_events(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no events file at {path} (written by runtime.live --out-jsonl)")
    events = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        if "label" in row:
            events.append(row)
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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("events", help="JSONL written by runtime.live --out-jsonl")
    p.add_argument("--truth", help="ground-truth JSON of a synthetic --sequence video")
    p.add_argument("--lag", type=int, default=0,
                   help="frames an event trails its action by: half the model card's span_frames")
    a = p.parse_args(argv)
    try:
        events = read_events(a.events)
        print(f"recognised {len(events)} action(s):")
        for ev in events:
            print(f"  {ev['start_s']:7.2f} - {ev['end_s']:7.2f} s  {ev['label']:<14} score {ev['score']:.2f}")
        if a.truth:
            truth = json.loads(Path(a.truth).read_text(encoding="utf-8"))
            matches = match_segments(events, truth["segments"], a.lag)
            hits = sum(ev is not None for _, ev in matches)
            print(f"ground truth: {hits}/{len(matches)} segments recognised")
            for seg, ev in matches:
                print(f"  frames {seg['start_frame']:5d}-{seg['end_frame']:5d}  {seg['label']:<14} "
                      f"{'recognised' if ev else 'MISSED'}")
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"error: {e}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
