"""The videos of a scene generator's folder-format output: each video's own size, frame count, fps
and codec drawn from a scene module's ``SIZES``, ``FRAMES`` (inclusive range), ``FPS`` and
``CODECS``, then its frames from the scene's ``render_clip`` -- shared by the pretraining corpus
(:mod:`tsi.data.motion_corpus`) and the unseen-motion set (``benchmarks.unseen_motion``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runtime.common.video import write_video


def sample_format(rng: np.random.Generator, scene) -> dict[str, Any]:
    """A video's format, drawn first from its rng (so the scene's draws follow)."""
    size = scene.SIZES[int(rng.integers(len(scene.SIZES)))]
    frames = int(rng.integers(scene.FRAMES[0], scene.FRAMES[1] + 1))
    fps = scene.FPS[int(rng.integers(len(scene.FPS)))]
    fourcc, suffix = scene.CODECS[int(rng.integers(len(scene.CODECS)))]
    return {"size": size, "frames": frames, "fps": fps, "fourcc": fourcc, "suffix": suffix}


def scene_params(scene) -> dict[str, Any]:
    """The marker's record of a scene: its classes, what each video's format is drawn from, its actor
    families, and how each video's rng is seeded (:func:`write_scene_videos`)."""
    return {"classes": list(scene.CLASSES), "sizes": [list(s) for s in scene.SIZES], "frames": list(scene.FRAMES),
            "fps": list(scene.FPS), "codecs": [list(c) for c in scene.CODECS], "families": list(scene.FAMILIES),
            "rng": "np.random.default_rng([seed, split_index, class_index, video_index])"}


def _write_class(out: Path, scene_name: str, render: Callable, split: str, si: int, ci: int, n: int,
                 seed: int) -> list[Path]:
    scene = importlib.import_module(scene_name)
    label, paths = scene.CLASSES[ci], []
    for k in range(n):
        rng = np.random.default_rng([int(seed), si, ci, k])
        fmt = sample_format(rng, scene)
        frames, _ = render(label, rng, fmt["frames"], fmt["size"])
        path = out / split / label / f"{label}_{k:04d}{fmt['suffix']}"
        write_video(path, frames, fps=fmt["fps"], fourcc=fmt["fourcc"])
        paths.append(path)
    return paths


def write_scene_videos(out: Path, scene, render: Callable, splits: Sequence[str], counts: Sequence[int],
                       seed: int, workers: int = 1) -> set[Path]:
    """Write ``counts[s]`` videos per class of ``scene.CLASSES`` into ``out/<split>/<class>/``:
    video k of class c in split s from ``np.random.default_rng([seed, s, c, k])`` (the same seed
    gives the same videos; a larger count keeps the first ones), one class of a split per job on
    ``workers`` processes (``render`` then must be a module's function). Returns the paths written."""
    jobs = [(out, scene.__name__, render, split, si, ci, n, seed) for si, (split, n) in enumerate(zip(splits, counts))
            for ci in range(len(scene.CLASSES)) if n]
    if workers <= 1:
        return {p for job in jobs for p in _write_class(*job)}
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return {p for paths in pool.map(_write_class, *zip(*jobs)) for p in paths}
