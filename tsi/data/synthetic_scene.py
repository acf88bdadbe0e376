"""Rendering of the synthetic Something-Something stand-in: one textured object on a textured,
panning, shaking background, doing one of :data:`CLASSES`.

The classes come in time-reversed pairs (move_right/move_left, move_down/move_up, approach/recede,
appear/disappear, rotate_cw/rotate_ccw) plus ``no_motion``. The second class of a pair is drawn by
sampling the first one's clip -- object track, camera path, per-frame noise -- and playing it
backwards, so ``render_clip(b, rng_k) == render_clip(a, rng_k)[::-1]`` exactly. A pair therefore has
the same distribution of single frames and of unordered frame sets: only the order of frames tells
its classes apart. Camera drift and shake move background and object together, and per-frame gain
and sensor noise make plain frame differences noisy.

Coordinates: the object's track is in frame pixels at camera offset 0; the camera offset (drift +
shake, within ``margin`` px) shifts the background crop and the object alike. Angles follow
``cv2.getRotationMatrix2D``: positive is counter-clockwise on screen, so ``rotate_cw`` decreases it.
"""

from __future__ import annotations

import cv2
import numpy as np

CLASSES = ("appear", "approach", "disappear", "move_down", "move_left", "move_right", "move_up",
           "no_motion", "recede", "rotate_ccw", "rotate_cw")  # sorted: label index = folder order
REVERSED_PAIRS = (("move_right", "move_left"), ("move_down", "move_up"), ("approach", "recede"),
                  ("appear", "disappear"), ("rotate_cw", "rotate_ccw"))
# class -> (class whose track is sampled, played backwards?)
CANONICAL = {"no_motion": ("no_motion", False),
             **{a: (a, False) for a, _ in REVERSED_PAIRS}, **{b: (a, True) for a, b in REVERSED_PAIRS}}
SPRITE = 96  # sprite canvas (px); drawn once per clip, warped per frame
MARGIN = 16  # background border beyond the frame on each side (px): room for the camera
NOISE_SIGMA = 3.0


def _check_label(label: str) -> tuple[str, bool]:
    if label not in CANONICAL:
        raise ValueError(f"unknown synthetic class {label!r}; one of {CLASSES}")
    return CANONICAL[label]


def _colour(rng: np.random.Generator, vmin: float = 60, vmax: float = 255) -> np.ndarray:
    hsv = np.array([[[rng.integers(180), rng.integers(80, 256), rng.integers(vmin, vmax + 1)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def _pattern(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """One texture in [0, 1], (h, w): blurred noise, stripes or checker."""
    kind = rng.integers(3)
    if kind == 0:
        cell = int(rng.choice([4, 8, 16]))
        low = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
        img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        return np.clip(cv2.GaussianBlur(img, (0, 0), cell / 3), 0, 1)
    xs, ys = _grid(w, h)
    theta = rng.uniform(0, np.pi)
    if kind == 1:
        period = rng.uniform(6, 24)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)
    cell = rng.uniform(6, 20)
    u, v = xs * np.cos(theta) + ys * np.sin(theta), -xs * np.sin(theta) + ys * np.cos(theta)
    return cv2.GaussianBlur(((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32), (0, 0), 0.8)


def make_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A textured BGR image (h, w): one or two textures mixed, two colours, a few static blobs."""
    t = _pattern(rng, w, h)
    if rng.random() < 0.5:
        a = rng.uniform(0.3, 0.7)
        t = a * t + (1 - a) * _pattern(rng, w, h)
    c0, c1 = _colour(rng, 30, 200), _colour(rng, 30, 200)
    img = c0 + t[..., None] * (c1 - c0)
    for _ in range(int(rng.integers(0, 4))):  # static clutter: moves only with the camera
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        axes = (int(rng.integers(4, 16)), int(rng.integers(4, 16)))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, _colour(rng).tolist(), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_sprite(rng: np.random.Generator, canvas: int = SPRITE) -> tuple[np.ndarray, np.ndarray]:
    """A textured rectangle, ellipse or scalene triangle with an off-centre marker (so rotation is
    visible): BGR float32 (c, c, 3) and an antialiased mask float32 (c, c) in [0, 1]."""
    c = canvas
    mask = np.zeros((c, c), np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        hw, hh = 0.45 * c, 0.45 * c * rng.uniform(0.45, 0.75)
        pts = np.array([[c / 2 - hw, c / 2 - hh], [c / 2 + hw, c / 2 - hh],
                        [c / 2 + hw, c / 2 + hh], [c / 2 - hw, c / 2 + hh]])
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif kind == 1:
        axes = (int(0.45 * c), int(0.45 * c * rng.uniform(0.45, 0.75)))
        cv2.ellipse(mask, (c // 2, c // 2), axes, 0, 0, 360, 255, -1)
    else:
        ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3 + rng.uniform(-0.5, 0.5, 3)
        pts = c / 2 + 0.46 * c * np.stack([np.cos(ang), np.sin(ang)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    colour, other = _colour(rng, 90), _colour(rng, 40)
    tex = _pattern(rng, c, c)[..., None]
    sprite = colour * (0.65 + 0.35 * tex)
    cv2.circle(sprite, (int(0.72 * c), c // 2), max(3, c // 10), other.tolist(), -1)
    outline = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    sprite[outline] *= 0.5
    return sprite, cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)


def camera_path(rng: np.random.Generator, frames: int, margin: int = MARGIN) -> np.ndarray:
    """(frames, 2) camera offsets (x, y): slow sinusoidal drift plus per-frame shake, |.| < margin."""
    k = np.arange(frames, dtype=np.float64)[:, None]
    amp = rng.uniform(0, 0.5 * margin, 2)
    freq = rng.uniform(0.002, 0.012, 2)  # cycles per frame: a slow pan over a 32-frame clip
    phase = rng.uniform(0, 2 * np.pi, 2)
    shake = np.clip(rng.normal(0, 0.8, (frames, 2)), -2.5, 2.5)
    return amp * np.sin(2 * np.pi * freq * k + phase) + shake


def frame_effects(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame noise seeds and gains (drawn up front so a reversed clip reverses them too)."""
    return rng.integers(0, 2**63, frames), rng.uniform(0.96, 1.04, frames)


def _progress(rng: np.random.Generator, frames: int) -> np.ndarray:
    """0 -> 1 over a random sub-interval of the clip, with a random amount of easing."""
    t = np.linspace(0.0, 1.0, frames)
    t0, t1, ease = rng.uniform(0, 0.2), rng.uniform(0.8, 1.0), rng.random()
    p = np.clip((t - t0) / (t1 - t0), 0, 1)
    return (1 - ease) * p + ease * p * p * (3 - 2 * p)


def sample_track(label: str, rng: np.random.Generator, frames: int, size: tuple[int, int], *,
                 object_scale: tuple[float, float] = (0.3, 0.45)) -> dict[str, np.ndarray]:
    """Per-frame object state of one clip: ``x``, ``y`` (centre, px), ``size`` (canvas px),
    ``angle`` (deg, counter-clockwise), ``alpha`` (opacity); reversed classes played backwards.
    The object's size is ``object_scale`` x the frame height (before any approach/appear scaling)."""
    canonical, backwards = _check_label(label)
    w, h = size
    p = _progress(rng, frames)
    obj = h * rng.uniform(*object_scale)
    x = np.full(frames, w * rng.uniform(0.3, 0.7))
    y = np.full(frames, h * rng.uniform(0.3, 0.7))
    drift = rng.uniform(-0.06, 0.06, 2) * h  # a little off-axis drift, reversed with the track
    angle = np.full(frames, rng.uniform(0, 360))
    scale, alpha = np.ones(frames), np.ones(frames)
    if canonical == "move_right":
        d = w * rng.uniform(0.35, 0.55)
        x = w * rng.uniform(0.18, 0.82 - d / w) + d * p
        y = y + drift[1] * p
    elif canonical == "move_down":
        d = h * rng.uniform(0.35, 0.5)
        y = h * rng.uniform(0.2, 0.8 - d / h) + d * p
        x = x + drift[0] * p
    elif canonical == "approach":
        s0 = rng.uniform(0.4, 0.6)
        scale = s0 * rng.uniform(1.7, 2.2) ** p
    elif canonical == "appear":
        alpha, scale = p, 0.3 + 0.7 * p
    elif canonical == "rotate_cw":
        angle = angle - rng.uniform(100, 200) * p
    if canonical not in ("move_right", "move_down", "no_motion"):
        x, y = x + drift[0] * p, y + drift[1] * p
    track = {"x": x, "y": y, "size": obj * scale, "angle": angle, "alpha": alpha}
    track = {k: np.asarray(v, np.float64) for k, v in track.items()}
    return {k: v[::-1].copy() for k, v in track.items()} if backwards else track


def _sensor(frame: np.ndarray, gain: float, noise_seed: int) -> np.ndarray:
    """The camera's sensor, shared by both settings: exposure gain, Gaussian read noise (seeded per
    frame), rounding and clipping to uint8."""
    h, w = frame.shape[:2]
    noise = np.random.default_rng(int(noise_seed)).standard_normal((h, w, 3), dtype=np.float32)
    frame = frame * float(gain) + NOISE_SIGMA * noise
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def render_frame(background: np.ndarray, offset: np.ndarray, sprite: np.ndarray, mask: np.ndarray,
                 state: dict[str, float], noise_seed: int, gain: float, size: tuple[int, int]) -> np.ndarray:
    """One BGR uint8 frame: background crop at the camera offset, the object composited, gain and
    sensor noise. ``background`` is the frame plus ``MARGIN`` px on every side."""
    w, h = size
    margin = (background.shape[1] - w) // 2
    ox, oy = float(offset[0]), float(offset[1])
    m_bg = np.float32([[1, 0, -(margin + ox)], [0, 1, -(margin + oy)]])
    frame = cv2.warpAffine(background, m_bg, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    c = sprite.shape[0]
    m = cv2.getRotationMatrix2D((c / 2, c / 2), float(state["angle"]), float(state["size"]) / c)
    m[:, 2] += (state["x"] - ox - c / 2, state["y"] - oy - c / 2)
    spr = cv2.warpAffine(sprite, m, (w, h), flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[..., None] * float(state["alpha"])
    frame += a * (spr - frame)
    return _sensor(frame, gain, noise_seed)


def new_scene(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """The background of a clip or sequence: the frame plus :data:`MARGIN` px on each side."""
    w, h = size
    return make_background(rng, w + 2 * MARGIN, h + 2 * MARGIN)


def contrast_against(sprite: np.ndarray, background: np.ndarray, gap: float = 80.0) -> np.ndarray:
    """Shift the object's brightness away from the background's mean, so the object always stands
    out: motion, not object detection, is what the benchmark is about (a from-scratch network
    learns nothing in a CPU budget when a green object sits on green grass)."""
    bg, obj = float(background.mean()), float(sprite.mean())
    target = bg - gap if bg > 127.5 else bg + gap
    return np.clip(sprite + (target - obj), 0.0, 255.0).astype(np.float32)


def render_clip(label: str, rng: np.random.Generator, frames: int = 32,
                size: tuple[int, int] = (160, 128)) -> list[np.ndarray]:
    """One clip of class ``label``: ``frames`` BGR uint8 frames of ``size`` = (width, height)."""
    canonical, backwards = _check_label(label)
    background = new_scene(rng, size)
    cam = camera_path(rng, frames)
    seeds, gains = frame_effects(rng, frames)
    sprite, mask = make_sprite(rng)
    sprite = contrast_against(sprite, background)
    track = sample_track(label, rng, frames, size)
    if backwards:  # the track is already reversed; play the camera and noise backwards too
        cam, seeds, gains = cam[::-1], seeds[::-1], gains[::-1]
    return [render_frame(background, cam[k], sprite, mask, {n: v[k] for n, v in track.items()},
                         seeds[k], gains[k], size) for k in range(frames)]


# -- the hard setting ------------------------------------------------------------------------------
# What users' videos look like and the easy setting lacks: a small object among moving distractors,
# larger frames of several sizes and aspect ratios, a camera that pans and zooms, several frame
# rates (a clip lasts the same time, so its frame count varies) and codecs. The classes, and the
# exact time reversal of each pair, are the easy setting's.
HARD_SIZES = ((192, 144), (256, 192), (320, 240), (240, 240), (288, 192))  # (width, height)
HARD_FPS = (15.0, 24.0, 30.0, 60.0)
HARD_CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"), ("XVID", ".avi"), ("VP80", ".webm"))
HARD_DURATION_S = 32 / 30  # the easy clip's 32 frames at 30 fps
HARD_OBJECT_SCALE = (0.14, 0.22)  # the acting object, x frame height (easy: 0.3-0.45)
HARD_DISTRACTORS = (2, 4)  # per clip, inclusive
HARD_DISTRACTOR_SCALE = (0.06, 0.11)  # about half the actor
HARD_DISTRACTOR_GAP = 40.0  # their brightness gap to the background (the actor's: 80)
HARD_MARGIN = 0.15  # background border, x the frame's long side: room for pan and zoom-out
HARD_ZOOM = (0.9, 1.15)  # zoom factor at the clip's end (start: 1)
HARD_PAN = 0.08  # total pan over a clip, x frame width


def sample_hard_format(rng: np.random.Generator) -> dict:
    """One hard clip's container: ``size`` (w, h), ``fps``, ``frames``, ``fourcc``, ``suffix``."""
    size = HARD_SIZES[int(rng.integers(len(HARD_SIZES)))]
    fps = HARD_FPS[int(rng.integers(len(HARD_FPS)))]
    fourcc, suffix = HARD_CODECS[int(rng.integers(len(HARD_CODECS)))]
    return {"size": size, "fps": fps, "frames": max(2, int(round(HARD_DURATION_S * fps))),
            "fourcc": fourcc, "suffix": suffix}


def hard_camera(rng: np.random.Generator, frames: int, size: tuple[int, int]) -> np.ndarray:
    """(frames, 3) camera states (x offset, y offset, zoom): a linear pan of up to ``HARD_PAN`` x
    width in a random direction, the easy setting's drift and shake, and a smooth zoom."""
    w, _ = size
    t = np.linspace(-0.5, 0.5, frames)[:, None]
    theta = rng.uniform(0, 2 * np.pi)
    pan = rng.uniform(0, HARD_PAN) * w * np.array([np.cos(theta), np.sin(theta)]) * t
    wobble = camera_path(rng, frames, margin=max(MARGIN, int(0.04 * w)))
    zoom = rng.uniform(*HARD_ZOOM) ** (t[:, 0] + 0.5)
    return np.concatenate([pan + wobble, zoom[:, None]], axis=1)


def distractor_tracks(rng: np.random.Generator, frames: int, size: tuple[int, int]) -> list[dict]:
    """Distractor objects moving at constant velocity in random directions (and spinning): a
    motion distribution that is its own time reversal, so it says nothing about the class."""
    w, h = size
    out = []
    for _ in range(int(rng.integers(HARD_DISTRACTORS[0], HARD_DISTRACTORS[1] + 1))):
        t = np.linspace(-0.5, 0.5, frames)
        x0, y0 = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        theta, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.5) * w
        a0, spin = rng.uniform(0, 360), rng.uniform(-120, 120)
        out.append({"x": x0 + speed * np.cos(theta) * t, "y": y0 + speed * np.sin(theta) * t,
                    "size": np.full(frames, h * rng.uniform(*HARD_DISTRACTOR_SCALE)),
                    "angle": a0 + spin * t, "alpha": np.ones(frames)})
    return out


def render_frame_hard(background: np.ndarray, camera: np.ndarray,
                      objects: list[tuple[np.ndarray, np.ndarray, dict[str, float]]],
                      noise_seed: int, gain: float, size: tuple[int, int]) -> np.ndarray:
    """One BGR uint8 frame of the hard setting: the background seen by a camera at ``camera`` =
    (x offset, y offset, zoom about the frame centre), ``objects`` composited in order (last on
    top), gain and sensor noise. Object states are in frame pixels of the unmoved camera."""
    w, h = size
    margin = (background.shape[1] - w) // 2
    ox, oy, z = (float(v) for v in camera)
    cx, cy = w / 2, h / 2
    # unmoved-camera coordinates p -> frame: z * (p - offset - centre) + centre
    cam = np.float64([[z, 0, cx - z * (ox + cx)], [0, z, cy - z * (oy + cy)]])
    m_bg = cam.copy()
    m_bg[:, 2] -= z * margin  # background pixel b sits at p = b - margin
    frame = cv2.warpAffine(background, m_bg, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    for sprite, mask, state in objects:
        c = sprite.shape[0]
        m = cv2.getRotationMatrix2D((c / 2, c / 2), float(state["angle"]), float(state["size"]) / c)
        m[:, 2] += (state["x"] - c / 2, state["y"] - c / 2)
        full = cam[:, :2] @ m
        full[:, 2] += cam[:, 2]
        spr = cv2.warpAffine(sprite, full, (w, h), flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(mask, full, (w, h), flags=cv2.INTER_LINEAR)[..., None] * float(state["alpha"])
        frame += a * (spr - frame)
    return _sensor(frame, gain, noise_seed)


def render_clip_hard(label: str, rng: np.random.Generator, frames: int,
                     size: tuple[int, int]) -> list[np.ndarray]:
    """One hard clip of class ``label`` (``frames`` frames of ``size``; draw both with
    :func:`sample_hard_format` to vary them per clip). The second class of a reversed pair is the
    first one's clip -- actor, distractors, camera, noise -- played backwards, exactly."""
    canonical, backwards = _check_label(label)
    w, h = size
    background = make_background(rng, w + 2 * int(HARD_MARGIN * max(w, h)),
                                 h + 2 * int(HARD_MARGIN * max(w, h)))
    cam = hard_camera(rng, frames, size)
    seeds, gains = frame_effects(rng, frames)
    layers = []
    for trk in distractor_tracks(rng, frames, size):
        sprite, mask = make_sprite(rng)
        layers.append((contrast_against(sprite, background, HARD_DISTRACTOR_GAP), mask, trk))
    sprite, mask = make_sprite(rng)
    track = sample_track(canonical, rng, frames, size, object_scale=HARD_OBJECT_SCALE)
    layers.append((contrast_against(sprite, background), mask, track))  # the actor, on top
    order = np.arange(frames)[::-1] if backwards else np.arange(frames)
    return [render_frame_hard(background, cam[k],
                              [(s, m, {n: v[k] for n, v in trk.items()}) for s, m, trk in layers],
                              seeds[k], gains[k], size) for k in order]
