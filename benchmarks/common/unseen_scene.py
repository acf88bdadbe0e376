"""The scene of :mod:`benchmarks.unseen_motion` (used only to report, never to tune): one textured
actor -- a stick figure whose limbs swing, a star with a marked tip, or a ring with a gap -- doing
one of :data:`CLASSES` in world coordinates among static textured clutter on a textured background,
seen by a panning, jittering, mildly flickering camera. Its own scene model: nothing of
``tsi.data.synthetic`` / ``tsi.data.synthetic_scene``.

Coordinates: world = frame pixels at camera offset 0; the camera offset (a pan centred on 0 plus
jitter, whole pixels) crops the world, so the actor's image position is its world position minus the
camera's. Angles follow ``cv2.getRotationMatrix2D``: positive is counter-clockwise on screen.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

CLASSES = ("fade_in", "fade_out", "grow", "out_and_back", "rise", "shrink", "sink", "slide_left",
           "slide_right", "spin_ccw", "spin_cw", "still")  # sorted: label index = folder order
# pairs of classes whose motions are each other's played backwards (a model blind to frame order
# cannot tell them apart)
REVERSED_PAIRS = (("slide_left", "slide_right"), ("rise", "sink"), ("grow", "shrink"),
                  ("spin_cw", "spin_ccw"), ("fade_in", "fade_out"))
SIZES = ((320, 240), (384, 288), (448, 252), (512, 288))  # (width, height)
FRAMES = (24, 64)  # inclusive
FPS = (15.0, 24.0, 30.0)
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))
FAMILIES = ("stick", "star", "ring")
PAN = (0.04, 0.12)  # total camera pan over a clip, x frame width
JITTER = 3.0  # px, per-frame camera shake bound


def _colour(rng: np.random.Generator, vlo: int, vhi: int) -> np.ndarray:
    hsv = np.array([[[rng.integers(180), rng.integers(60, 256), rng.integers(vlo, vhi + 1)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _texture(rng: np.random.Generator, w: int, h: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 BGR: two colours in dots, rings, stripes or smooth noise."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    kind, period = int(rng.integers(4)), float(rng.uniform(5, 14))
    if kind == 0:  # dots on a grid
        t = ((np.hypot(xs % period - period / 2, ys % period - period / 2) < period / 3)).astype(np.float32)
    elif kind == 1:  # concentric rings about a random point
        t = 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h)) / period)
    elif kind == 2:  # two-colour stripes at a random angle
        a = rng.uniform(0, np.pi)
        t = (np.sin(2 * np.pi * (xs * np.cos(a) + ys * np.sin(a)) / period) > 0).astype(np.float32)
    else:
        t = cv2.resize(rng.random((h // 6 + 2, w // 6 + 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return c0 + np.clip(t, 0, 1)[..., None] * (c1 - c0)


def _world(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """The static world (uint8 BGR): a smooth colour field with bricks or strokes, and 3-7 textured
    shapes of clutter (rectangles, triangles, ellipses)."""
    field = rng.uniform(70, 170, (3, 4, 3)).astype(np.float32)
    img = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    shade = _colour(rng, 20, 90).tolist() if rng.random() < 0.5 else _colour(rng, 170, 240).tolist()
    if rng.random() < 0.5:  # bricks
        bw, bh = int(rng.integers(24, 48)), int(rng.integers(12, 24))
        for r, y in enumerate(range(0, h, bh)):
            cv2.line(img, (0, y), (w, y), shade, 1)
            for x in range(-(r % 2) * bw // 2, w, bw):
                cv2.line(img, (x, y), (x, y + bh), shade, 1)
    else:  # scattered strokes
        for _ in range(int(rng.integers(20, 50))):
            p = rng.uniform(0, 1, 2) * (w, h)
            q = p + rng.normal(0, 12, 2)
            cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), shade, int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(3, 8))):
        s = int(rng.uniform(0.06, 0.16) * h)
        cx, cy = int(rng.integers(s, w - s)), int(rng.integers(s, h - s))
        mask = np.zeros((2 * s, 2 * s), np.uint8)
        kind = int(rng.integers(3))
        if kind == 0:
            box = cv2.boxPoints(((s, s), (2 * s * rng.uniform(0.5, 1), 2 * s * rng.uniform(0.4, 0.9)), rng.uniform(0, 90)))
            cv2.fillPoly(mask, [box.astype(np.int32)], 255)
        elif kind == 1:
            cv2.fillPoly(mask, [rng.integers(0, 2 * s, (3, 2)).astype(np.int32)], 255)
        else:
            cv2.ellipse(mask, (s, s), (s - 1, int(s * rng.uniform(0.4, 1))), rng.uniform(0, 180), 0, 360, 255, -1)
        tex = _texture(rng, 2 * s, 2 * s, _colour(rng, 50, 200), _colour(rng, 50, 200))
        roi = img[cy - s:cy + s, cx - s:cx + s]
        roi[mask > 0] = tex[mask > 0]
    return np.clip(img, 0, 255).astype(np.uint8)


def _stick(canvas: int, pose: np.ndarray, thick: int) -> np.ndarray:
    """uint8 mask of a stick figure (radius ~canvas/2): head, torso, two 2-segment arms and legs at
    ``pose`` = 8 joint angles (radians, 0 = down)."""
    m = np.zeros((canvas, canvas), np.uint8)
    c, r = canvas / 2, canvas / 2 * 0.92
    pt = lambda x, y: (int(round(c + x * r)), int(round(c + y * r)))  # noqa: E731
    cv2.circle(m, pt(0, -0.72), int(0.2 * r), 255, -1)
    cv2.line(m, pt(0, -0.5), pt(0, 0.15), 255, thick)
    for i, (root, l1, l2) in enumerate(((-0.4, 0.3, 0.28), (-0.4, 0.3, 0.28), (0.15, 0.45, 0.38), (0.15, 0.45, 0.38))):
        a, b = pose[2 * i], pose[2 * i] + pose[2 * i + 1]
        j = (l1 * np.sin(a), root + l1 * np.cos(a))
        e = (j[0] + l2 * np.sin(b), j[1] + l2 * np.cos(b))
        cv2.line(m, pt(0, root), pt(*j), 255, thick)
        cv2.line(m, pt(*j), pt(*e), 255, thick)
    return m


def _actor(rng: np.random.Generator, canvas: int, bg_mean: float, frames: int):
    """A function frame index -> (canvas, canvas, 4) float32 premultiplied BGR + alpha, and the family."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    lo, hi = (185, 255) if bg_mean < 128 else (15, 75)  # the actor's brightness opposite the background's
    tex = _texture(rng, canvas, canvas, _colour(rng, lo, hi), _colour(rng, lo, hi))
    edge = np.array([20, 20, 20] if lo > 128 else [235, 235, 235], np.float32)
    c = canvas // 2
    if family == "stick":
        base = np.array([0.5, 0.3, -0.5, -0.3, 0.3, 0.1, -0.3, -0.1]) * rng.uniform(0.6, 1.6, 8) + np.pi * np.array(
            [1, 0, 1, 0, 0, 0, 0, 0]) * np.sign(rng.uniform(-1, 1, 8)) * (rng.random(8) < 0.3)
        amp, phase = rng.uniform(0.15, 0.45, 8), rng.uniform(0, 2 * np.pi, 8)
        freq = rng.uniform(0.5, 1.5) * 2 * np.pi / max(frames - 1, 1)
        thick = max(2, canvas // 11)
        masks = lambda k: _stick(canvas, base + amp * np.sin(freq * k + phase), thick)  # noqa: E731
    else:
        m = np.zeros((canvas, canvas), np.uint8)
        r = int(c * 0.92)
        if family == "star":
            n = int(rng.integers(4, 8))
            ang = np.arange(2 * n) * np.pi / n
            rad = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.38, 0.6))
            cv2.fillPoly(m, [np.stack([c + rad * np.sin(ang), c - rad * np.cos(ang)], 1).astype(np.int32)], 255)
        else:
            gap, width = rng.uniform(40, 80), int(r * rng.uniform(0.3, 0.5))
            cv2.ellipse(m, (c, c), (r - width // 2, r - width // 2), -90, gap / 2, 360 - gap / 2, 255, width)
        masks = lambda k: m  # noqa: E731
    marker = _colour(rng, 0, 255)

    def sprite(k: int) -> np.ndarray:
        body = masks(k)
        outline = cv2.dilate(body, np.ones((3, 3), np.uint8), iterations=2)
        rgb = np.where(body[..., None] > 0, tex, edge)
        if family == "star":  # the top tip in its own colour, so the turn is plain
            cv2.circle(rgb, (c, c - int(c * 0.7)), max(2, canvas // 14), marker.tolist(), -1)
        a = cv2.GaussianBlur(outline.astype(np.float32) / 255, (3, 3), 0)
        return np.dstack([rgb * a[..., None], a])

    if family != "stick":
        fixed = sprite(0)
        return (lambda k: fixed), family
    return sprite, family


def _progress(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """0 -> 1 over the whole clip, linear or eased (never at rest)."""
    e = rng.uniform(0, 0.7)
    return (1 - e) * t + e * t * t * (3 - 2 * t)


def _track(label: str, rng: np.random.Generator, n: int, w: int, h: int) -> dict[str, np.ndarray]:
    """The actor's world motion: offsets dx, dy from its start (px), size (px, bounding diameter),
    angle (degrees, counter-clockwise positive as cv2.getRotationMatrix2D) and opacity, per frame."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; one of {CLASSES}")
    t = np.linspace(0, 1, n)
    p = _progress(rng, t)
    zero, one = np.zeros(n), np.ones(n)
    dx, dy = zero.copy(), zero.copy()
    size = one * rng.uniform(0.15, 0.35) * h
    angle = one * rng.uniform(0, 360)
    opacity = one * rng.uniform(0.75, 1.0)
    if label in ("slide_left", "slide_right"):
        dx = p * rng.uniform(0.35, 0.45) * w * (1 if label == "slide_right" else -1)
    elif label in ("rise", "sink"):
        dy = p * rng.uniform(0.3, 0.4) * h * (1 if label == "sink" else -1)
    elif label in ("grow", "shrink"):
        small, big = rng.uniform(0.13, 0.19) * h, rng.uniform(0.29, 0.35) * h
        size = small + (big - small) * (p if label == "grow" else 1 - p)
    elif label in ("spin_cw", "spin_ccw"):
        turn = rng.uniform(200, max(200, min(400, 13 * (n - 1))))  # <= ~18 degrees a frame
        angle = angle + p * turn * (1 if label == "spin_ccw" else -1)
    elif label in ("fade_in", "fade_out"):
        lo, hi = rng.uniform(0, 0.03), rng.uniform(0.97, 1.0)
        opacity = lo + (hi - lo) * (p if label == "fade_in" else 1 - p)
    elif label == "out_and_back":
        theta, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.4) * h
        q = np.sin(np.pi * p)
        dx, dy = q * dist * np.cos(theta), q * dist * np.sin(theta)
    return {"dx": dx, "dy": dy, "size": size, "angle": angle, "opacity": opacity}


def _camera(rng: np.random.Generator, n: int, w: int) -> np.ndarray:
    """(n, 2) camera offsets (px): a pan centred on 0 plus per-frame jitter within ``JITTER``."""
    theta, length = rng.uniform(0, 2 * np.pi), rng.uniform(*PAN) * w
    t = np.linspace(0, 1, n)
    prof = t if rng.random() < 0.5 else t * t * (3 - 2 * t)
    pan = (prof - 0.5)[:, None] * length * np.array([np.cos(theta), np.sin(theta)])
    return np.round(pan + np.clip(rng.normal(0, JITTER / 2, (n, 2)), -JITTER, JITTER))  # whole px: a crop


def _start(rng: np.random.Generator, path: np.ndarray, radius: float, extent: int) -> float:
    """A random world start along one axis keeping the actor inside the frame along ``path`` (its
    image offsets from the start); the middle of the room when the path is too long."""
    lo, hi = radius - path.min(), extent - radius - path.max()
    return float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2


def render_clip(label: str, rng: np.random.Generator, frames: int, size: tuple[int, int], *,
                actor: bool = True) -> tuple[list[np.ndarray], dict[str, Any]]:
    """``frames`` BGR uint8 frames of ``size`` = (width, height) of class ``label``, and the truth:
    camera offsets (frames, 2), the actor's image centre (frames, 2), its track and family.
    ``actor=False`` draws the same clip without the actor (same draws of ``rng``)."""
    w, h = size
    margin = int(PAN[1] * w / 2 + JITTER + 2)
    world = _world(rng, w + 2 * margin, h + 2 * margin)
    track = _track(label, rng, frames, w, h)
    cam = _camera(rng, frames, w)
    canvas = int(np.ceil(track["size"].max())) | 1
    sprite, family = _actor(rng, canvas, float(world.mean()), frames)
    radius = track["size"].max() / 2
    x0 = _start(rng, track["dx"] - cam[:, 0], radius, w)
    y0 = _start(rng, track["dy"] - cam[:, 1], radius, h)
    centre = np.stack([x0 + track["dx"] - cam[:, 0], y0 + track["dy"] - cam[:, 1]], 1)
    flicker = 1 + rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * rng.uniform(0.5, 2) * np.linspace(0, 1, frames)
                                                   + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.008, frames)
    out = []
    for k in range(frames):
        ox, oy = int(cam[k, 0]) + margin, int(cam[k, 1]) + margin
        gain = float(flicker[k])
        frame = cv2.convertScaleAbs(world[oy:oy + h, ox:ox + w], alpha=gain)  # a new array
        scale = track["size"][k] / canvas
        half = scale * canvas * 0.75 + 2
        (cx, cy), op = centre[k], track["opacity"][k]
        bx0, by0 = max(0, int(cx - half)), max(0, int(cy - half))
        bx1, by1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
        if actor and bx1 > bx0 and by1 > by0 and op > 0:
            m = cv2.getRotationMatrix2D((canvas / 2, canvas / 2), float(track["angle"][k]), float(scale))
            m[:, 2] += (cx - canvas / 2 - bx0, cy - canvas / 2 - by0)
            layer = cv2.warpAffine(sprite(k), m, (bx1 - bx0, by1 - by0), flags=cv2.INTER_LINEAR)
            roi = frame[by0:by1, bx0:bx1]
            mixed = roi * (1 - op * layer[..., 3:]) + layer[..., :3] * (op * gain)
            roi[:] = cv2.convertScaleAbs(mixed)  # saturated to uint8
        out.append(frame)
    return out, {"camera": cam, "centre": centre, "track": track, "family": family}
