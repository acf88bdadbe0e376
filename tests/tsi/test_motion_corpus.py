"""tsi.data.motion_corpus: the folder layout the loader reads, the same videos whatever --workers,
the refusal of a foreign folder, a bad count in one line; every class's drawn track does what its
name says, the actor is drawn where its track says (measured on the pixels, through the camera),
and the scene imports nothing of the project's other generators."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.benchmarks.video_files import first_frame, videos
from tsi.data import corpus_scene as scene
from tsi.data import motion_corpus as mc
from tsi.data.formats import folder_samples
from tsi.data.generated import sample_format
from tests.imported_names import imported_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "set"
    assert mc.main(["--out", str(out), "--train", "1", "--val", "1", "--seed", "3", "--workers", "2"]) == 0
    return out


def test_layout_labels_marker_and_the_loader(small):
    assert (small / "labels.txt").read_text().splitlines() == sorted(scene.CLASSES) == list(scene.CLASSES)
    marker = json.loads((small / mc.MARKER).read_text())
    assert marker["complete"] is True and marker["format"] == mc.MARKER_FORMAT and len(marker["classes"]) == 24
    for split in ("train", "val"):
        samples, classes, _ = folder_samples(small, split)
        assert classes == list(scene.CLASSES) and sorted(s.label for s in samples) == list(range(24))
    assert not list(small.rglob(".*"))
    assert {first_frame(p).shape[1::-1] for p in videos(small)} <= set(scene.SIZES)


def test_the_same_videos_on_one_process(small, tmp_path):
    other = tmp_path / "one"
    assert mc.main(["--out", str(other), "--train", "1", "--val", "0", "--seed", "3"]) == 0
    for p in videos(other):
        assert np.array_equal(first_frame(p), first_frame(small / p.relative_to(other))), p


def test_bad_folders_and_counts_are_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    assert mc.main(["--out", str(tmp_path), "--train", "1"]) == 2
    assert mc.main(["--out", str(tmp_path / "new"), "--train", "0", "--val", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--force" in err[0] and "nothing to write" in err[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _track(label: str, seed: list[int]):
    rng = np.random.default_rng(seed)
    fmt = sample_format(rng, scene)
    frames, info = scene.render_clip(label, rng, fmt["frames"], fmt["size"])
    return fmt, frames, info


def _says_its_name(label: str, info: dict, h: int) -> bool:
    c = (info["centre"] - info["centre"][0]) / h
    n = len(c)
    i, j = round(0.1 * (n - 1)), round(0.9 * (n - 1))
    moved, turn = c[j] - c[i], info["angle"][j] - info["angle"][i]
    grow, fade = info["scale"][j] / info["scale"][i], info["opacity"][j] - info["opacity"][i]
    away = np.hypot(*c.T).max()
    flips = lambda v: int(np.sum(np.diff(np.sign(np.diff(v))) != 0))  # noqa: E731 -- extrema in v
    if label.startswith("move_") and label[5:] in scene._DIRS:
        want = np.array(scene._DIRS[label[5:]], float)
        cos = moved @ want / (np.linalg.norm(moved) * np.linalg.norm(want))
        return np.linalg.norm(moved) > 0.25 and cos > 0.95
    still_pose = abs(turn) < 1e-6 and abs(grow - 1) < 1e-6 and abs(fade) < 1e-6
    if label == "still":
        return away < 1e-6 and still_pose
    if label in ("rotate_cw", "rotate_ccw"):
        return (turn < -150) if label == "rotate_cw" else (turn > 150)
    if label in ("scale_up", "scale_down"):
        return grow > 1.5 if label == "scale_up" else grow < 1 / 1.5
    if label in ("fade_in", "fade_out"):
        return fade > 0.5 if label == "fade_in" else fade < -0.5
    if label in ("oscillate_h", "oscillate_v"):
        along, across = (c[:, 0], c[:, 1]) if label == "oscillate_h" else (c[:, 1], c[:, 0])
        return np.ptp(along) > 0.1 and np.ptp(across) < 1e-6 and flips(along) >= 2 and still_pose
    if label == "rock":
        return np.ptp(info["angle"]) > 40 and flips(info["angle"]) >= 2 and away < 1e-6
    if label == "pulse":
        return np.ptp(np.log(info["scale"])) > np.log(1.5) and flips(info["scale"]) >= 2 and away < 1e-6
    if label in ("circle_cw", "circle_ccw"):
        rel = info["centre"] - info["centre"].mean(0)
        swept = np.unwrap(np.arctan2(rel[:, 1], rel[:, 0]))  # image y is down: growing = clockwise
        return (swept[-1] - swept[0]) * (1 if label == "circle_cw" else -1) > 0.7 * 2 * np.pi
    if label == "go_and_return":
        return away > 0.25 and np.hypot(*c[-1]) < 0.02
    if label in ("move_then_stop", "stop_then_move"):
        k = round(0.3 * (n - 1))
        part = c[-1] - c[-1 - k] if label == "move_then_stop" else c[k] - c[0]
        return away > 0.25 and np.hypot(*part) < 0.01
    raise AssertionError(label)


@pytest.mark.parametrize("label", scene.CLASSES)
def test_every_class_does_what_it_is_named_and_is_drawn_where_its_track_says(label):
    ci = scene.CLASSES.index(label)
    for k in range(2):
        seed = [7, 0, ci, k]
        fmt, frames, info = _track(label, seed)
        w, h = fmt["size"]
        assert _says_its_name(label, info, h), (k, fmt)
        rng = np.random.default_rng(seed)
        sample_format(rng, scene)
        empty, _ = scene.render_clip(label, rng, fmt["frames"], fmt["size"], actor=False)
        checked = 0
        for f, e, centre, cam, op, sc in zip(frames, empty, info["centre"], info["camera_affine"],
                                             info["opacity"], info["scale"]):
            x, y = cam @ np.array([*centre, 1.0])
            r = 0.4 * scene.SPRITE * sc
            if op < 0.6 or not (r < x < w - r and r < y < h - r):
                continue
            d = cv2.absdiff(f, e).astype(np.float32).sum(axis=2)
            ys, xs = np.nonzero(d > 40)
            assert len(xs), (k, checked)
            assert np.hypot(xs.mean() - x, ys.mean() - y) < 0.5 * r + 3, (k, checked)
            checked += 1
        assert checked >= 5, (k, checked)


def test_the_scene_is_its_own():
    """Neither module imports the project's other generators (any import, also in functions)."""
    for path in (ROOT / "tsi" / "data" / "motion_corpus.py", ROOT / "tsi" / "data" / "corpus_scene.py"):
        names = imported_names(path)
        bad = {n for n in names if n.startswith(("tsi.data.synthetic", "benchmarks"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"
