"""Clips for top-1 and for INT8 calibration, read the way training and evaluation read them.

Top-1: one view per video (centre clip, centre crop: ``tsi.evaluate``'s 1-view protocol) of any
dataset layout the training side reads (``tsi.data.datasets.build_dataset``: folder, list, ssv2,
kinetics), scored with ``tsi.evaluate.metrics``. Calibration: ``calib.clips`` (the runtime's
preprocessing) on a folder of videos.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    clips: np.ndarray  # (N, T, 3, S, S) float32
    labels: np.ndarray  # (N,)
    classes: list[str]
    source: str
    skipped: int


def load_eval_set(data: Path, card, *, fmt: str = "folder", split: str = "val", list_file: str | None = None,
                  labels_file: str | None = None, max_videos: int | None = None) -> EvalSet:
    """All (or ``max_videos`` evenly spread) videos of the split, one view each, as one array."""
    from runtime.common.progress import progress_bar
    from tsi.data.datasets import build_dataset

    ds = build_dataset(fmt, data, card=card, split=split, mode="test", list_file=list_file, labels_file=labels_file)
    if list(ds.classes) != list(card.labels):
        raise ValueError(f"the dataset's classes differ from the model's labels: "
                         f"{list(ds.classes)[:5]}... vs {list(card.labels)[:5]}...")
    idx = list(range(len(ds)))
    if max_videos and max_videos < len(idx):
        idx = [idx[round(i * len(idx) / max_videos)] for i in range(max_videos)]
    clips, labels = [], []
    for i in progress_bar(idx, desc="validation clips", unit="clip", leave=False):
        x, y = ds[i]
        clips.append(x.numpy())
        labels.append(int(y))
    log.info("eval set: %d clips of %s from %s (%s, %s)", len(clips), card.input_shape, data, fmt, split)
    return EvalSet(np.stack(clips), np.asarray(labels), list(card.labels), f"{data} ({fmt}, {split})", ds.skipped)


def top1(runner, es: EvalSet, batch: int) -> float:
    """Top-1 (%) of ``runner`` over the eval set, in batches of ``batch``."""
    from tsi.evaluate import metrics

    logits = np.concatenate([runner(es.clips[i:i + batch]) for i in range(0, len(es.clips), batch)])
    return metrics(logits, es.labels, es.classes)["top1"]


def calibration_clips(folder: Path, card, max_clips: int, min_clips: int = 8) -> np.ndarray:
    from calib.clips import load_calibration_clips

    return load_calibration_clips(folder, card, max_clips=max_clips, min_clips=min_clips, recommended=0).clips


def make_quick_data(out: Path, *, val: int = 2, train: int = 1, seed: int = 0) -> Path:
    """A small synthetic dataset for --quick. Video k of a class and split is drawn from
    ``[seed, split, class, k]`` (``tsi.data.synthetic``): these val videos are the first ``val`` of
    the full benchmark's validation split."""
    from tsi.data.synthetic import generate

    generate(out, train=train, val=val, seed=seed, progress=False)
    return out
