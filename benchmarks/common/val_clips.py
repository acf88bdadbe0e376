"""One centre clip per video of a folder of class folders, with its label, for a study's top-1
(the runtime's preprocessing: ``calib.clips.load_clip``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.val_clips")


def val_clips(data: Path, card, max_videos: int | None):
    """One centre clip per video of data/<class>/*, labels from the folder names via the card."""
    from calib.clips import load_clip
    from runtime.common.video import VIDEO_SUFFIXES
    from runtime.common.video import VideoDecodeError

    if not data.is_dir():
        raise SystemExit(f"error: --data {data} is not a folder of class folders")
    videos = sorted(p for p in data.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if max_videos:
        videos = videos[:: max(1, len(videos) // max_videos)][:max_videos]
    clips, labels, skipped = [], [], 0
    for v in videos:
        cls = v.parent.name
        if cls not in card.labels:
            raise SystemExit(f"error: {v}: class folder {cls!r} is not one of the model's labels")
        try:
            clips.append(load_clip(v, card))
        except (VideoDecodeError, ValueError) as e:
            log.warning("skipping %s: %s", v, e)
            skipped += 1
            continue
        labels.append(card.labels.index(cls))
    if not clips:
        raise SystemExit(f"error: no readable video under {data}")
    return np.stack(clips), np.asarray(labels), skipped
