"""Scene b of :mod:`benchmarks.unseen_motion` (used only to report, never to tune), a second scene
model independent of scene a (:mod:`benchmarks.common.unseen_scene`) and of ``tsi.data.synthetic`` /
``tsi.data.synthetic_scene``: one textured actor -- a rigid cloud of dots, a thick letter-like
stroke, a chain of blobs joined by bars, or an irregular plate with holes -- casting a soft drop
shadow, doing one of :data:`CLASSES` over a static textured floor (weave, foliage, planks or
cobbles) with static clutter (crosses, crescents, arcs, dashes), seen by a tripod camera that
breathes in zoom and rolls slightly about the frame centre, with motion blur on the actor, a
vignette and per-frame sensor noise.

Coordinates: the actor's track is in nominal frame pixels (the frame at zoom 1, roll 0); the camera
maps them to the image by ``cv2.getRotationMatrix2D(frame centre, roll, zoom)``. Angles follow
``cv2.getRotationMatrix2D``: positive is counter-clockwise on screen.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

CLASSES = ("bounce", "cartwheel", "dash_then_stop", "glide", "orbit_ccw", "orbit_cw", "pendulum",
           "pulse", "rock", "shake", "wait_then_dash", "zigzag")  # sorted: label index = folder order
# pairs of classes whose motions are each other's played backwards
REVERSED_PAIRS = (("dash_then_stop", "wait_then_dash"), ("orbit_ccw", "orbit_cw"))
SIZES = ((320, 240), (400, 300), (448, 252), (512, 288))  # (width, height)
FRAMES = (24, 64)  # inclusive
FPS = (15.0, 20.0, 25.0, 30.0)
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))
FAMILIES = ("dots", "glyph", "chain", "plate")
ZOOM = (1.0, 1.1)  # the camera's zoom range
ROLL = 2.5  # degrees, the camera's largest roll
MAX_TURN = 15.0  # degrees a frame, the fastest the actor turns


def _hsv(rng: np.random.Generator, hue: float, slo: int, shi: int, vlo: int, vhi: int) -> np.ndarray:
    hsv = np.array([[[int(hue) % 180, rng.integers(slo, shi + 1), rng.integers(vlo, vhi + 1)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _mix(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    return c0 + np.clip(t, 0, 1)[..., None] * (c1 - c0)


# ---- the floor and its clutter ----

def _floor(rng: np.random.Generator, w: int, h: int, hue: float) -> np.ndarray:
    """(h, w, 3) float32 BGR: weave, foliage, planks or cobbles in hues near ``hue``."""
    c0, c1 = _hsv(rng, hue, 40, 160, 60, 150), _hsv(rng, hue + rng.uniform(-20, 20), 40, 160, 90, 190)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    a = rng.uniform(0, np.pi)
    ramp = (xs * np.cos(a) + ys * np.sin(a)) / np.hypot(w, h) + 0.5  # a gradient between the two colours
    img = _mix(ramp, c0, c1)
    kind = int(rng.integers(4))
    if kind == 0:  # weave: two crossed gratings
        period = rng.uniform(6, 16)
        u, v = xs * np.cos(a) + ys * np.sin(a), -xs * np.sin(a) + ys * np.cos(a)
        img += (rng.uniform(8, 20) * (np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period)))[..., None]
    elif kind == 1:  # foliage: soft leaves of three shades
        shades = [_hsv(rng, hue + rng.uniform(-30, 30), 60, 200, 50, 200) for _ in range(3)]
        for _ in range(int(rng.integers(60, 140))):
            leaf = np.zeros((h, w), np.uint8)
            axes = (int(rng.uniform(0.02, 0.06) * h) + 2, int(rng.uniform(0.01, 0.03) * h) + 1)
            cv2.ellipse(leaf, (int(rng.integers(w)), int(rng.integers(h))), axes, rng.uniform(0, 180), 0, 360, 255, -1)
            alpha = cv2.GaussianBlur(leaf.astype(np.float32) / 255, (0, 0), 1.2)[..., None] * rng.uniform(0.4, 0.8)
            img = img * (1 - alpha) + shades[int(rng.integers(3))] * alpha
    elif kind == 2:  # planks with grain along them
        vertical = rng.random() < 0.5
        length, across = (h, w) if vertical else (w, h)
        grain = cv2.resize(rng.random((max(2, across // 3), max(2, length // 40))).astype(np.float32),
                           (length, across), interpolation=cv2.INTER_LINEAR)  # (across, length)
        shade = np.zeros(across, np.float32)
        edges, pos = [], 0
        while pos < across:
            width = int(rng.integers(14, 41))
            shade[pos:pos + width] = rng.uniform(-25, 25)
            edges.append(pos)
            pos += width
        field = shade[:, None] + 22 * (grain - 0.5)
        field[edges] -= 45  # the gaps between planks
        img += (field.T if vertical else field)[..., None]
    else:  # cobbles: nearest-seed cells with dark joints
        n = int(rng.integers(25, 80))
        seeds = rng.uniform(0, 1, (n, 2)) * (w, h)
        gx, gy = np.meshgrid(np.arange(0, w, 4, dtype=np.float32), np.arange(0, h, 4, dtype=np.float32))
        d = (gx[..., None] - seeds[:, 0]) ** 2 + (gy[..., None] - seeds[:, 1]) ** 2
        cell = cv2.resize(np.argmin(d, axis=2).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        tone = rng.uniform(-30, 30, n).astype(np.float32)
        joint = (cv2.Laplacian(cell, cv2.CV_32F) != 0).astype(np.uint8)
        joint = cv2.dilate(joint, np.ones((2, 2), np.uint8)).astype(np.float32)
        img += (tone[cell.astype(np.int64)] - 50 * joint)[..., None]
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray, hue: float) -> None:
    """Draws 3-6 static items (crosses, crescents, thick arcs, dashed lines) into ``img``."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(3, 7))):
        s = int(rng.uniform(0.04, 0.09) * h) + 3
        cx, cy = int(rng.integers(w)), int(rng.integers(h))
        mask = np.zeros((h, w), np.uint8)
        kind = int(rng.integers(4))
        if kind == 0:  # a cross
            t = max(2, s // 3)
            ang = rng.uniform(0, np.pi / 2)
            for b in (ang, ang + np.pi / 2):
                d = s * np.array([np.cos(b), np.sin(b)])
                cv2.line(mask, (int(cx - d[0]), int(cy - d[1])), (int(cx + d[0]), int(cy + d[1])), 255, t)
        elif kind == 1:  # a crescent
            cv2.circle(mask, (cx, cy), s, 255, -1)
            b = rng.uniform(0, 2 * np.pi)
            cv2.circle(mask, (int(cx + 0.5 * s * np.cos(b)), int(cy + 0.5 * s * np.sin(b))), int(0.9 * s), 0, -1)
        elif kind == 2:  # a thick arc
            start = rng.uniform(0, 360)
            cv2.ellipse(mask, (cx, cy), (s, int(s * rng.uniform(0.5, 1))), rng.uniform(0, 180), start,
                        start + rng.uniform(90, 200), 255, max(2, s // 4))
        else:  # a dashed line
            b, length, dash = rng.uniform(0, np.pi), 3 * s, max(3, s // 2)
            for k in range(0, length, 2 * dash):
                p = np.array([cx, cy]) + (k - length / 2) * np.array([np.cos(b), np.sin(b)])
                q = p + dash * np.array([np.cos(b), np.sin(b)])
                cv2.line(mask, tuple(int(v) for v in p), tuple(int(v) for v in q), 255, max(2, s // 5))
        colour = _hsv(rng, hue + rng.uniform(-35, 35), 30, 200, 40, 220)  # not the actor's hues
        sel = mask > 0
        img[sel] = img[sel] * 0.3 + colour * 0.7


# ---- the actor ----

def _ink(rng: np.random.Generator, d: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """(d, d, 3) float32: the actor's texture -- wedges about the centre, hatching, speckle or a split."""
    xs, ys = np.meshgrid(np.arange(d, dtype=np.float32) - d / 2, np.arange(d, dtype=np.float32) - d / 2)
    kind = int(rng.integers(4))
    if kind == 0:
        t = (np.floor((np.arctan2(ys, xs) + np.pi) / (2 * np.pi) * int(rng.integers(3, 7))) % 2)
    elif kind == 1:
        a, period = rng.uniform(0, np.pi), rng.uniform(3, 7)
        t = ((xs * np.cos(a) + ys * np.sin(a)) % period < period / 2).astype(np.float32)
    elif kind == 2:
        t = cv2.GaussianBlur((rng.random((d, d)) < 0.3).astype(np.float32), (0, 0), 0.8) * 2
    else:
        a = rng.uniform(0, 2 * np.pi)
        t = (xs * np.cos(a) + ys * np.sin(a) > rng.uniform(-0.15, 0.15) * d).astype(np.float32)
    return _mix(t, c0, c1)


def _shape(rng: np.random.Generator, family: str, d: int) -> np.ndarray:
    """(d, d) uint8 mask of the family, asymmetric (so a turn shows), its centroid at the centre and
    its farthest point ~0.46 d from it (so ``d`` is its bounding diameter)."""
    big = 2 * d + 1  # drawn large, then fitted
    m = np.zeros((big, big), np.uint8)
    c, r = big / 2, big * 0.3

    def pt(p) -> tuple[int, int]:
        return int(round(c + p[0] * r)), int(round(c + p[1] * r))

    if family == "dots":  # a rigid lopsided cloud of dots
        n = int(rng.integers(8, 14))
        pts = rng.normal(0, 1, (n, 2)) * (0.5, 0.28)
        pts[:, 0] += 0.25 * pts[:, 1] ** 2  # bent, so no two halves match
        pts = np.clip(pts, -0.9, 0.9)
        for p, rad in zip(pts, rng.uniform(0.13, 0.22, n)):
            cv2.circle(m, pt(p), max(2, int(rad * r)), 255, -1)
    elif family == "glyph":  # a thick stroke like a letter, with a dot
        k = int(rng.integers(4, 7))
        pts = [rng.uniform(-0.8, 0.8, 2)]
        while len(pts) < k:
            q = rng.uniform(-0.85, 0.85, 2)
            if np.hypot(*(q - pts[-1])) > 0.6:
                pts.append(q)
        thick = max(2, int(big * rng.uniform(0.07, 0.1)))
        cv2.polylines(m, [np.array([pt(p) for p in pts], np.int32)], False, 255, thick, cv2.LINE_AA)
        cv2.circle(m, pt(rng.uniform(-0.8, 0.8, 2)), thick, 255, -1)
    elif family == "chain":  # blobs of several sizes joined by bars
        k = int(rng.integers(3, 6))
        pts = np.cumsum(rng.normal(0, 0.5, (k, 2)), axis=0)
        pts = (pts - pts.mean(0)) / max(1e-6, np.abs(pts - pts.mean(0)).max()) * 0.7
        bar = max(2, int(big * rng.uniform(0.04, 0.07)))
        for p, q in zip(pts, pts[1:]):
            cv2.line(m, pt(p), pt(q), 255, bar)
        for p, rad in zip(pts, rng.uniform(0.16, 0.32, k)):
            cv2.circle(m, pt(p), max(2, int(rad * r)), 255, -1)
    else:  # "plate": an irregular polygon with 1-3 holes
        k = int(rng.integers(9, 15))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.55, 1.0, k)
        cv2.fillPoly(m, [np.array([pt((q * np.cos(a), q * np.sin(a))) for a, q in zip(ang, rad)], np.int32)], 255)
        for _ in range(int(rng.integers(1, 4))):
            p = rng.uniform(-0.4, 0.4, 2)
            cv2.circle(m, pt(p), max(2, int(rng.uniform(0.1, 0.2) * r)), 0, -1)
    ys, xs = np.nonzero(m)
    mx, my = xs.mean(), ys.mean()
    reach = max(1.0, float(np.sqrt(((xs - mx) ** 2 + (ys - my) ** 2).max())))
    scale = 0.46 * d / reach
    fit = np.float32([[scale, 0, d / 2 - scale * mx], [0, scale, d / 2 - scale * my]])
    return cv2.warpAffine(m, fit, (d, d), flags=cv2.INTER_LINEAR)


def _actor(rng: np.random.Generator, d: int, floor_value: float, floor_hue: float) -> tuple[np.ndarray, str]:
    """(d, d, 4) float32 premultiplied BGR + alpha of a random family, and the family."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    mask = _shape(rng, family, d)
    vlo, vhi = (190, 255) if floor_value < 125 else (10, 70)  # opposite the floor's brightness
    hue = floor_hue + rng.uniform(60, 120)
    tex = _ink(rng, d, _hsv(rng, hue, 80, 255, vlo, vhi), _hsv(rng, hue + rng.uniform(-25, 25), 80, 255, vlo, vhi))
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (3, 3), 0)
    return np.dstack([tex * alpha[..., None], alpha]), family


# ---- motion ----

def _ease(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    e = rng.uniform(0, 0.5)
    return (1 - e) * t + e * t * t * (3 - 2 * t)


def _smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0, 1)
    return u * u * (3 - 2 * u)


def _track(label: str, rng: np.random.Generator, n: int, w: int, h: int) -> dict[str, np.ndarray]:
    """The actor's motion in nominal frame pixels: offsets dx, dy from its start, size (px, the
    sprite's diameter) and angle (degrees, counter-clockwise positive), per frame."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; one of {CLASSES}")
    t = np.linspace(0, 1, n)
    zero, one = np.zeros(n), np.ones(n)
    dx, dy = zero.copy(), zero.copy()
    size = one * rng.uniform(0.2, 0.35) * h
    angle = one * rng.uniform(0, 360)
    theta = rng.uniform(0, 2 * np.pi)  # a random direction, for the classes that use one
    side = 1 if rng.random() < 0.5 else -1  # left or right, for the classes that use one
    most = MAX_TURN * (n - 1)  # the largest total turn
    if label == "bounce":  # drops from an apex onto a floor and hops 2-3 times, each lower
        hops, top, decay = int(rng.integers(2, 4)), rng.uniform(0.3, 0.4) * h, rng.uniform(0.6, 0.85)
        s = t * hops + 0.5
        i, u = np.floor(s), s - np.floor(s)
        dy = top - top * decay ** i * 4 * u * (1 - u)
        dx = t * rng.uniform(-0.06, 0.06) * h
    elif label == "cartwheel":  # rolls along the floor, turning as a wheel would
        dx = side * _ease(rng, t) * rng.uniform(0.35, 0.45) * w
        roll = np.degrees(dx / (size / 2))
        angle = angle - roll * min(1.0, most / max(1e-9, abs(roll[-1])))
    elif label in ("dash_then_stop", "wait_then_dash", "glide"):
        dist = rng.uniform(0.3, 0.4) * h
        if label == "glide":  # steadily over the whole clip
            p = _ease(rng, t)
        else:  # within the first (last) 30-45% of the clip, resting the rest of it
            tau = rng.uniform(0.3, 0.45)
            p = _smooth(t / tau) if label == "dash_then_stop" else _smooth((t - 1 + tau) / tau)
        dx, dy = p * dist * np.cos(theta), p * dist * np.sin(theta)
    elif label in ("orbit_ccw", "orbit_cw"):  # circles a point, its own angle fixed
        radius, turns = rng.uniform(0.16, 0.22) * h, rng.uniform(0.8, 1.2)
        phi = theta + (1 if label == "orbit_ccw" else -1) * 2 * np.pi * turns * _ease(rng, t)
        dx = radius * (np.cos(phi) - np.cos(theta))
        dy = -radius * (np.sin(phi) - np.sin(theta))  # image y is down: counter-clockwise on screen
    elif label == "pendulum":  # swings on an arc below an unseen pivot, tilting with the arm
        arm, amp = rng.uniform(0.3, 0.4) * h, rng.uniform(30, 45)
        swings = min(rng.uniform(1.25, 2.25), max(1.0, MAX_TURN * (n - 1) / (2 * np.pi * amp)))
        phi = amp * np.cos(2 * np.pi * swings * t + rng.uniform(0, 2 * np.pi))
        dx = arm * (np.sin(np.radians(phi)) - np.sin(np.radians(phi[0])))
        dy = arm * (np.cos(np.radians(phi)) - np.cos(np.radians(phi[0])))
        angle = angle + phi - phi[0]
    elif label == "pulse":  # grows and shrinks 1.5-2.5 times in place
        small, big = rng.uniform(0.14, 0.18) * h, rng.uniform(0.3, 0.36) * h
        beats = rng.uniform(1.5, 2.5)
        size = small + (big - small) * 0.5 * (1 - np.cos(2 * np.pi * beats * t + rng.uniform(0, 2 * np.pi)))
    elif label == "rock":  # turns back and forth in place
        amp = rng.uniform(30, 50)
        cycles = min(rng.uniform(1.25, 2.5), max(1.0, MAX_TURN * (n - 1) / (2 * np.pi * amp)))
        rock = amp * np.sin(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi))
        angle = angle + rock - rock[0]
    elif label == "shake":  # fast small shakes in place along a random axis
        amp, period = rng.uniform(0.07, 0.1) * h, rng.uniform(3, 5)
        q = amp * np.sin(2 * np.pi * np.arange(n) / period + rng.uniform(0, 2 * np.pi))
        q = q - q[0]
        dx, dy = q * np.cos(theta), q * np.sin(theta)
    elif label == "zigzag":  # crosses the frame sideways while going up and down in straight legs
        dx = side * t * rng.uniform(0.35, 0.45) * w
        legs, amp = rng.uniform(2, 3), rng.uniform(0.1, 0.14) * h
        s = (legs * t + rng.uniform(0, 1)) % 1
        tri = 4 * np.abs(s - 0.5) - 1  # a triangle wave in [-1, 1]
        dy = amp * (tri - tri[0])
    return {"dx": dx, "dy": dy, "size": size, "angle": angle}


def _camera(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The tripod camera per frame: zoom breathing within :data:`ZOOM`, roll within +-:data:`ROLL`."""
    t = np.linspace(0, 1, n)
    lo = rng.uniform(ZOOM[0], ZOOM[0] + 0.04)
    depth = rng.uniform(0.03, min(0.06, ZOOM[1] - lo))
    zoom = lo + depth * 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)))
    roll = rng.uniform(1.0, ROLL) * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t + rng.uniform(0, 2 * np.pi))
    return {"zoom": zoom, "roll": roll}


def _start(rng: np.random.Generator, path: np.ndarray, inset: float, extent: int) -> float:
    """A random start along one axis keeping ``path`` (offsets from it) ``inset`` inside
    ``extent``; the middle when the path is too long."""
    lo, hi = inset - path.min(), extent - inset - path.max()
    return float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2


def _at(values: np.ndarray, k: float) -> float:
    return float(np.interp(k, np.arange(len(values)), values))


def render_clip(label: str, rng: np.random.Generator, frames: int, size: tuple[int, int], *,
                actor: bool = True) -> tuple[list[np.ndarray], dict[str, Any]]:
    """``frames`` BGR uint8 frames of ``size`` = (width, height) of class ``label``, and the truth:
    the camera (per-frame ``zoom``, ``roll`` and its 2x3 nominal-to-image ``matrix``), the actor's
    nominal ``position`` and image ``centre`` (frames, 2), its track and family. ``actor=False``
    draws the same clip without the actor (same draws of ``rng``)."""
    w, h = size
    margin = int(0.08 * w) + 4
    hue = float(rng.uniform(0, 180))
    world = _floor(rng, w + 2 * margin, h + 2 * margin, hue)
    _clutter(rng, world, hue)
    world = np.clip(world, 0, 255).astype(np.float32)
    track = _track(label, rng, frames, w, h)
    cam = _camera(rng, frames)
    d = int(np.ceil(track["size"].max())) | 1
    sprite, family = _actor(rng, d, float(world.mean()), hue)
    opacity = rng.uniform(0.85, 1.0)
    inset = track["size"].max() / 2 * ZOOM[1] + 0.05 * h + 2
    x0 = _start(rng, track["dx"], inset, w)
    y0 = _start(rng, track["dy"], inset, h)
    position = np.stack([x0 + track["dx"], y0 + track["dy"]], 1)
    shadow = rng.uniform(0.25, 0.45), np.float32(rng.uniform(0.015, 0.03) * h * np.array([1, 1.3]))
    noise = rng.uniform(2.0, 6.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2  # 2 in the corners
    vignette = (1 - rng.uniform(0.1, 0.25) * edge / 2)[..., None]
    centre_img = (w / 2, h / 2)
    mats = np.stack([cv2.getRotationMatrix2D(centre_img, float(r), float(z)) for z, r in zip(cam["zoom"], cam["roll"])])
    centre = np.einsum("kij,kj->ki", mats[:, :, :2], position) + mats[:, :, 2]
    out = []
    for k in range(frames):
        cm = mats[k].copy()
        cm[:, 2] -= cm[:, :2] @ (margin, margin)  # the world canvas is the nominal frame plus a margin
        frame = cv2.warpAffine(world, cm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        step = float(np.abs(position[min(k + 1, frames - 1)] - position[max(k - 1, 0)]).max())  # the blur's reach
        half = track["size"].max() * 0.75 * ZOOM[1] + step + 8
        cx, cy = centre[k]
        bx0, by0 = max(0, int(cx - half)), max(0, int(cy - half))
        bx1, by1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
        if actor and bx1 > bx0 and by1 > by0:
            layer = np.zeros((by1 - by0, bx1 - bx0, 4), np.float32)
            for sub in (k - 1 / 3, k, k + 1 / 3):  # motion blur: the exposure spans 2/3 of a frame
                sm = cv2.getRotationMatrix2D((d / 2, d / 2), _at(track["angle"], sub), _at(track["size"], sub) / d)
                sm[:, 2] += (_at(position[:, 0], sub) - d / 2, _at(position[:, 1], sub) - d / 2)
                full = np.vstack([mats[k], (0, 0, 1)]) @ np.vstack([sm, (0, 0, 1)])
                full[:2, 2] -= (bx0, by0)
                layer += cv2.warpAffine(sprite, full[:2], layer.shape[1::-1], flags=cv2.INTER_LINEAR) / 3
            dark = cv2.warpAffine(layer[..., 3], np.float32([[1, 0, shadow[1][0]], [0, 1, shadow[1][1]]]),
                                  layer.shape[1::-1])
            roi = frame[by0:by1, bx0:bx1]
            roi *= (1 - shadow[0] * opacity * dark)[..., None]
            roi[:] = roi * (1 - opacity * layer[..., 3:]) + opacity * layer[..., :3]
        grain = rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(noise)
        out.append(cv2.convertScaleAbs(frame * vignette + grain))
    return out, {"camera": {**cam, "matrix": mats}, "position": position, "centre": centre, "track": track,
                 "family": family}
