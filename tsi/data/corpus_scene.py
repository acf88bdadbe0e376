"""The scene of the motion pretraining corpus (:mod:`tsi.data.motion_corpus`): one procedural actor --
a harmonic blob, a random polygon, a thick glyph or a compound of parts, in a random two-colour
texture -- doing one of :data:`CLASSES` over a static world of a layered noise field with 2-7
textured clutter shapes, seen by a camera that is still, pans, zooms or wanders by hand, with
optional jitter, roll, flicker, blur and sensor noise. Its own scene model: nothing of
``tsi.data.synthetic_scene`` nor of the unseen scenes (``benchmarks.common.unseen_scene*``).

The classes are a vocabulary of 2-D motion, not a copy of any data set's: the actor's affine pose
(translation in 8 directions, rotation either way, scale either way) and its opacity, each over the
whole clip, plus temporal shapes of them -- oscillation (horizontal, vertical, rotational, in scale),
circling either way, going and coming back, moving then stopping or the reverse -- and stillness.

Coordinates: the world is the frame enlarged by :data:`MARGIN`; a camera pose (centre, zoom, roll)
maps world to image by one affine, and the actor is warped straight into the image by the camera's
affine after its own. Angles follow ``cv2.getRotationMatrix2D``: positive is counter-clockwise.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

_DIRS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1), "up_right": (1, -1),
         "up_left": (-1, -1), "down_right": (1, 1), "down_left": (-1, 1)}
CLASSES = tuple(sorted([f"move_{d}" for d in _DIRS] + [
    "rotate_cw", "rotate_ccw", "scale_up", "scale_down", "fade_in", "fade_out", "still",
    "oscillate_h", "oscillate_v", "rock", "pulse", "circle_cw", "circle_ccw", "go_and_return",
    "move_then_stop", "stop_then_move"]))  # sorted: label index = folder order
SIZES = ((192, 144), (256, 192), (256, 144), (320, 180), (320, 240))  # (width, height)
FRAMES = (24, 64)  # inclusive
FPS = (15.0, 24.0, 30.0)
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))
FAMILIES = ("blob", "polygon", "glyph", "compound")
CAMERAS = ("still", "pan", "zoom", "wander")
MARGIN = 1.3  # world size / frame size
SPRITE = 96  # px, the actor's canvas before it is scaled


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _pattern(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w) float32 in [0, 1]: checks, stripes, a blurred noise or rings, of random scale."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    kind, p = int(rng.integers(4)), float(rng.uniform(4, 16))
    if kind == 0:
        return (((xs // p) + (ys // p)) % 2).astype(np.float32)
    if kind == 1:
        a = rng.uniform(0, np.pi)
        return 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (xs * np.cos(a) + ys * np.sin(a)) / p))
    if kind == 2:
        g = rng.random((max(2, int(h / p)), max(2, int(w / p)))).astype(np.float32)
        return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
    return 0.5 + 0.5 * np.cos(np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h)) * 2 * np.pi / p)


def _textured(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    c0, c1 = _colour(rng), _colour(rng)
    return c0 + _pattern(rng, w, h)[..., None] * (c1 - c0)


def _shape_mask(rng: np.random.Generator, family: str, s: int) -> np.ndarray:
    """(s, s) uint8 mask of an actor or a piece of clutter, centred, about 0.8 s across."""
    m = np.zeros((s, s), np.uint8)
    c, r = s / 2, 0.4 * s
    if family == "blob":
        th = np.linspace(0, 2 * np.pi, 90, endpoint=False)
        rad = np.ones_like(th)
        for k in range(1, 6):
            rad += rng.uniform(0, 0.3 / k) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
        rad = r * rad / rad.max()
        cv2.fillPoly(m, [np.stack([c + rad * np.cos(th), c + rad * np.sin(th)], 1).astype(np.int32)], 255)
    elif family == "polygon":
        n = int(rng.integers(3, 10))
        th = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.35, 1.0, n)
        cv2.fillPoly(m, [np.stack([c + rad * np.cos(th), c + rad * np.sin(th)], 1).astype(np.int32)], 255)
    elif family == "glyph":
        ch = "AFGJKLPRY47EZ"[int(rng.integers(13))]
        scale = s / 40
        (tw, th_), _ = cv2.getTextSize(ch, cv2.FONT_HERSHEY_SIMPLEX, scale, max(2, s // 10))
        cv2.putText(m, ch, (int(c - tw / 2), int(c + th_ / 2)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                    max(2, s // 10), cv2.LINE_AA)
    else:  # compound: 2-4 ellipses and bars about the centre
        for _ in range(int(rng.integers(2, 5))):
            off = rng.uniform(-0.22, 0.22, 2) * s
            ax = (int(rng.uniform(0.08, 0.22) * s), int(rng.uniform(0.05, 0.18) * s))
            cv2.ellipse(m, (int(c + off[0]), int(c + off[1])), ax, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return m


def _actor(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """The actor's (S, S, 3) float32 colour, (S, S) float32 alpha and its family."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    mask = _shape_mask(rng, family, SPRITE)
    colour = _textured(rng, SPRITE, SPRITE)
    if rng.random() < 0.5:  # a dark or light outline
        edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        colour[edge] = 20.0 if rng.random() < 0.5 else 235.0
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)
    return colour, alpha, family


def _world(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """The static world (float32 BGR): two octaves of colour noise, a faint pattern, 2-7 clutter shapes."""
    img = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((3, 1.0), (12, 0.35)):
        g = rng.uniform(-1, 1, (cells, cells * w // h + 1, 3)).astype(np.float32)
        img += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    img = 128 + 45 * img + rng.uniform(-40, 40, 3).astype(np.float32)
    img += rng.uniform(0, 30) * (_pattern(rng, w, h)[..., None] - 0.5)
    for _ in range(int(rng.integers(2, 8))):
        s = int(rng.uniform(0.06, 0.22) * h)
        m = _shape_mask(rng, FAMILIES[int(rng.integers(len(FAMILIES)))], s).astype(np.float32)[..., None] / 255
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        img[y:y + s, x:x + s] = img[y:y + s, x:x + s] * (1 - m) + _textured(rng, s, s) * m
    return img


def _ease(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    return t if rng.random() < 0.5 else t * t * (3 - 2 * t)


def _motion(label: str, rng: np.random.Generator, t: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame offsets from the start pose: dx, dy (x the frame height), angle (degrees, + = ccw),
    log-scale and opacity, for ``t`` in [0, 1]."""
    z = np.zeros_like(t)
    dx, dy, ang, ls, op = z.copy(), z.copy(), z.copy(), z.copy(), z + 1.0
    e = _ease(rng, t)
    if label.startswith("move_") and label[5:] in _DIRS:
        unit = np.array(_DIRS[label[5:]], np.float64)
        d = rng.uniform(0.35, 0.6) * unit / np.linalg.norm(unit)
        dx, dy = d[0] * e, d[1] * e
    elif label in ("go_and_return", "move_then_stop", "stop_then_move"):
        a = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(0.3, 0.5) * np.array([np.cos(a), np.sin(a)])
        if label == "go_and_return":
            prof = np.sin(np.pi * t) if rng.random() < 0.5 else 1 - np.abs(2 * t - 1)
        else:
            cut = rng.uniform(0.3, 0.55)
            prof = (np.clip(t / cut, 0, 1) if label == "move_then_stop"
                    else np.clip((t - (1 - cut)) / cut, 0, 1))
            prof = prof * prof * (3 - 2 * prof)
        dx, dy = d[0] * prof, d[1] * prof
    elif label in ("rotate_cw", "rotate_ccw"):
        ang = (1 if label == "rotate_ccw" else -1) * rng.uniform(180, 540) * e
    elif label in ("scale_up", "scale_down"):
        k = np.log(rng.uniform(1.7, 2.5))
        ls = k * e if label == "scale_up" else -k * e
    elif label in ("fade_in", "fade_out"):
        op = e if label == "fade_in" else 1 - e
    elif label in ("oscillate_h", "oscillate_v", "rock", "pulse"):
        cycles = rng.uniform(1.5, 5.0) if label != "pulse" else rng.uniform(1.2, 3.0)
        wave = np.sin(2 * np.pi * cycles * t + rng.choice([0, np.pi]))
        if label == "oscillate_h":
            dx = rng.uniform(0.06, 0.15) * wave
        elif label == "oscillate_v":
            dy = rng.uniform(0.06, 0.15) * wave
        elif label == "rock":
            ang = rng.uniform(25, 60) * wave
        else:
            ls = np.log(rng.uniform(1.3, 1.7)) * wave
    elif label in ("circle_cw", "circle_ccw"):
        turns = rng.uniform(0.75, 1.5) * (1 if label == "circle_cw" else -1)  # cw on screen: y down
        r, a0 = rng.uniform(0.12, 0.22), rng.uniform(0, 2 * np.pi)
        a = a0 + 2 * np.pi * turns * t
        dx, dy = r * (np.cos(a) - np.cos(a0)), r * (np.sin(a) - np.sin(a0))
    elif label != "still":
        raise ValueError(f"unknown class {label!r}; one of {CLASSES}")
    return {"dx": dx, "dy": dy, "angle": ang, "log_scale": ls, "opacity": op}


def _camera(rng: np.random.Generator, n: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Per-frame camera centre offset (n, 2) px from the world's centre, zoom (n,) and roll (n,) degrees."""
    kind = CAMERAS[int(rng.integers(len(CAMERAS)))]
    t = np.linspace(0, 1, n)
    off, zoom, roll = np.zeros((n, 2)), np.ones(n), np.zeros(n)
    room = (MARGIN - 1) / 2 * np.array([w, h]) * 0.8
    if kind == "pan":
        a = rng.uniform(0, 2 * np.pi)
        off = (np.outer(_ease(rng, t) - 0.5, [np.cos(a), np.sin(a)]) * 2 * room * rng.uniform(0.4, 1.0))
    elif kind == "zoom":
        z0, z1 = (1.0, rng.uniform(1.06, 1.15)) if rng.random() < 0.5 else (rng.uniform(1.06, 1.15), 1.0)
        zoom = z0 + (z1 - z0) * _ease(rng, t)
    elif kind == "wander":
        for axis in range(2):
            knots = rng.uniform(-1, 1, 4) * room[axis] * 0.6
            off[:, axis] = np.interp(t, np.linspace(0, 1, 4), knots)
    if rng.random() < 0.5:
        off = off + rng.uniform(-1, 1, (n, 2)) * rng.uniform(0.5, 2.5)
    if rng.random() < 0.3:
        roll = rng.uniform(-2, 2) * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t)
    return off, zoom, roll, kind


def render_clip(label: str, rng: np.random.Generator, n_frames: int, size: tuple[int, int], *,
                actor: bool = True) -> tuple[list[np.ndarray], dict[str, Any]]:
    """``n_frames`` uint8 BGR frames of ``size`` = (width, height) of ``label``, and what was drawn:
    the actor's per-frame world centre (px), angle, scale and opacity, and the camera's world-to-image
    affines. ``actor=False`` draws the same clip without the actor (the same draws)."""
    w, h = size
    ww, wh = int(w * MARGIN), int(h * MARGIN)
    world = _world(rng, ww, wh)
    colour, alpha, family = _actor(rng)
    t = np.linspace(0, 1, n_frames)
    mo = _motion(label, rng, t)
    base = rng.uniform(0.14, 0.3) * h  # the actor's diameter at log-scale 0
    if label == "scale_up":
        base = rng.uniform(0.1, 0.16) * h
    scale = base * np.exp(mo["log_scale"]) / (0.8 * SPRITE)
    reach = 0.8 * SPRITE * scale.max() / 2 + 2
    path_x, path_y = mo["dx"] * h, mo["dy"] * h
    lo = np.array([reach - path_x.min(), reach - path_y.min()])
    hi = np.array([w - reach - path_x.max(), h - reach - path_y.max()])
    start = rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi))
    angle0 = rng.uniform(0, 360)
    off, zoom, roll, cam = _camera(rng, n_frames, w, h)
    gain = 1 + rng.uniform(0, 0.06) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6.3))
    noise, blur = rng.uniform(0, 5), rng.random() < 0.2
    frames, centres, cams = [], [], []
    for i in range(n_frames):
        # camera: the world point at the frame's centre + offset maps to the frame's centre
        cam_m = cv2.getRotationMatrix2D((ww / 2 + off[i, 0], wh / 2 + off[i, 1]), float(roll[i]), float(zoom[i]))
        cam_m[:, 2] += np.array([w / 2, h / 2]) - np.array([ww / 2 + off[i, 0], wh / 2 + off[i, 1]])
        img = cv2.warpAffine(world, cam_m, (w, h), borderMode=cv2.BORDER_REFLECT)
        # actor: sprite centre -> its world position (the frame's pixel at camera offset 0)
        pos = np.array([start[0] + path_x[i], start[1] + path_y[i]]) + [(ww - w) / 2, (wh - h) / 2]
        act = cv2.getRotationMatrix2D((SPRITE / 2, SPRITE / 2), float(angle0 + mo["angle"][i]), float(scale[i]))
        act[:, 2] += pos - SPRITE / 2
        full = np.vstack([cam_m, [0, 0, 1]]) @ np.vstack([act, [0, 0, 1]])
        centres.append(pos)
        cams.append(cam_m)
        a = cv2.warpAffine(alpha, full[:2], (w, h)) * float(mo["opacity"][i] * actor)
        c = cv2.warpAffine(colour, full[:2], (w, h))
        img = img * (1 - a[..., None]) + c * a[..., None]
        img = img * gain[i] + rng.normal(0, noise, img.shape).astype(np.float32)
        if blur:
            img = cv2.GaussianBlur(img, (3, 3), 0)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames, {"family": family, "camera": cam, "actor_px": float(base), "centre": np.array(centres),
                    "angle": angle0 + mo["angle"], "scale": scale, "opacity": mo["opacity"],
                    "camera_affine": np.array(cams)}
