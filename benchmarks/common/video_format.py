"""Each video's own size, frame count, fps and codec in the unseen-motion set, drawn from a scene's
``SIZES``, ``FRAMES`` (inclusive range), ``FPS`` and ``CODECS`` (``benchmarks.common.unseen_scene``,
``unseen_scene_b``): the set's part of a video, apart from what its scene draws."""

from __future__ import annotations

from typing import Any

import numpy as np


def sample_format(rng: np.random.Generator, scene) -> dict[str, Any]:
    """A video's format, drawn first from its rng (so the scene's draws follow)."""
    size = scene.SIZES[int(rng.integers(len(scene.SIZES)))]
    frames = int(rng.integers(scene.FRAMES[0], scene.FRAMES[1] + 1))
    fps = scene.FPS[int(rng.integers(len(scene.FPS)))]
    fourcc, suffix = scene.CODECS[int(rng.integers(len(scene.CODECS)))]
    return {"size": size, "frames": frames, "fps": fps, "fourcc": fourcc, "suffix": suffix}
