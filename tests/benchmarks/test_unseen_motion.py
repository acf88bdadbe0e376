"""benchmarks.unseen_motion: the same seed gives the same videos (and a larger --train keeps the
first ones), the folder layout the training loader reads, the refusal of a foreign folder, a
half-written run marked incomplete, every class told apart from every other by motion statistics
measured on the pixels, and its scene imports nothing of the project's own synthetic generator."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import unseen_motion as um
from benchmarks.common import unseen_scene as scene
from tsi.data.generated import sample_format
from tests.benchmarks.video_files import first_frame, videos
from tsi.data.formats import folder_samples
from tests.imported_names import imported_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unseen") / "set"
    assert um.main(["--out", str(out), "--train", "1", "--val", "1", "--seed", "0"]) == 0
    return out


def test_layout_labels_marker_and_the_loader(small):
    assert (small / "labels.txt").read_text().splitlines() == sorted(scene.CLASSES) == list(scene.CLASSES)
    marker = json.loads((small / um.MARKER).read_text())
    assert marker["complete"] is True and marker["format"] == um.MARKER_FORMAT and marker["train"] == 1
    for split in ("train", "val"):
        samples, classes, _ = folder_samples(small, split)
        assert classes == list(scene.CLASSES) and len(samples) == len(scene.CLASSES)
        assert sorted(s.label for s in samples) == list(range(len(scene.CLASSES)))
        for s in samples:
            assert s.path.name.startswith(f"{classes[s.label]}_0000.")
    assert not [p for p in small.rglob(".*")]  # no temporary left
    sizes = {first_frame(p).shape[1::-1] for p in videos(small)}
    assert sizes <= set(scene.SIZES) and len(sizes) > 1


def test_same_seed_same_videos_and_a_larger_train_keeps_the_first(small, tmp_path):
    before = {p.relative_to(small): first_frame(p) for p in videos(small / "train")}
    other = tmp_path / "again"
    assert um.main(["--out", str(other), "--train", "2", "--val", "0", "--seed", "0"]) == 0
    assert len(videos(other)) == 2 * len(scene.CLASSES)
    for rel, frame in before.items():
        assert np.array_equal(first_frame(other / rel), frame), rel
    # a previous output may be overwritten: a smaller run removes what the larger one had more
    assert um.main(["--out", str(other), "--train", "1", "--val", "0", "--seed", "1"]) == 0
    assert len(videos(other)) == len(scene.CLASSES)
    now = {p.relative_to(other).with_suffix(""): first_frame(p) for p in videos(other)}
    assert set(now) == {rel.with_suffix("") for rel in before}
    for rel, frame in before.items():  # another seed, other videos (and maybe other codecs)
        assert not np.array_equal(now[rel.with_suffix("")], frame), rel


def test_a_foreign_folder_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    assert um.main(["--out", str(tmp_path), "--train", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--force" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_half_written_run_is_marked_incomplete(tmp_path, monkeypatch):
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [np.zeros((240, 320, 3), np.uint8)] * 3, {}

    monkeypatch.setattr(um, "render_clip", fail_second)
    with pytest.raises(KeyboardInterrupt):
        um.generate(tmp_path / "out", train=2, val=0)
    assert json.loads((tmp_path / "out" / um.MARKER).read_text())["complete"] is False
    assert len(videos(tmp_path / "out")) == 1 and not (tmp_path / "out" / "labels.txt").exists()


def _rotation(a: np.ndarray, b: np.ndarray) -> float:
    """The turn (degrees, counter-clockwise positive) that best maps patch a onto patch b: each
    turned half way, so that both are interpolated alike at every candidate."""
    c, shape = (a.shape[1] / 2, a.shape[0] / 2), a.shape[1::-1]
    a, b = cv2.GaussianBlur(a, (0, 0), 1.5), cv2.GaussianBlur(b, (0, 0), 1.5)
    angles = np.arange(-30, 31, 2)
    err = [np.square(cv2.warpAffine(a, cv2.getRotationMatrix2D(c, t / 2, 1), shape)
                     - cv2.warpAffine(b, cv2.getRotationMatrix2D(c, -t / 2, 1), shape)).sum() for t in angles]
    return float(angles[int(np.argmin(err))])


def motion_statistics(label: str, seed: list[int]) -> dict[str, float]:
    """Measured on the pixels: the actor is what differs between the clip and the same clip drawn
    without it; its energy-weighted centre (in the world: plus the camera offset), radius of
    gyration, energy, and the turn between consecutive frames of the patch around it."""
    def draw(actor: bool):
        rng = np.random.default_rng(seed)
        fmt = sample_format(rng, scene)  # drawn first, as the generator does
        return fmt, *scene.render_clip(label, rng, fmt["frames"], fmt["size"], actor=actor)

    fmt, frames, truth = draw(True)
    _, empty, _ = draw(False)
    w, h = fmt["size"]
    ys, xs = np.mgrid[0:h:2, 0:w:2].astype(np.float32)  # measured at half resolution (fast)
    half = int(truth["track"]["size"].max() * 0.3) + 2
    centre, radius, energy, patches = [], [], [], []
    for f, e, cam, c in zip(frames, empty, truth["camera"], truth["centre"]):
        d = cv2.resize(cv2.absdiff(f, e), (xs.shape[1], xs.shape[0]), interpolation=cv2.INTER_AREA)
        d = d.astype(np.float32).sum(axis=2)
        m = float(d.sum()) + 1e-9
        cx, cy = float((d * xs).sum()) / m, float((d * ys).sum()) / m
        centre.append((cx + cam[0], cy + cam[1]))
        radius.append(np.sqrt(float((d * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum()) / m))
        energy.append(m)
        pad = np.pad(d, half)
        x, y = int(round(c[0] / 2)) + half, int(round(c[1] / 2)) + half
        patches.append(pad[y - half:y + half, x - half:x + half] / (d.max() + 1e-9))
    centre, radius, energy = np.array(centre), np.array(radius), np.array(energy)
    i, j = round(0.1 * (len(frames) - 1)), round(0.9 * (len(frames) - 1))  # fades are ~0 at the ends
    shift = centre[i:j + 1] - centre[i]
    size = np.log(radius[j] / radius[i])
    return {"dx": shift[-1, 0] / w, "dy": shift[-1, 1] / h, "away": np.abs(shift).max() / h,
            "size": size, "fade": np.log(energy[j] / energy[i]) - 2 * size,
            "turn": sum(_rotation(a, b) for a, b in zip(patches, patches[1:]))}


def classify(s: dict[str, float]) -> str:
    if abs(s["fade"]) > np.log(4):
        return "fade_in" if s["fade"] > 0 else "fade_out"
    if abs(s["size"]) > np.log(1.3):
        return "grow" if s["size"] > 0 else "shrink"
    if abs(s["turn"]) > 100:
        return "spin_ccw" if s["turn"] > 0 else "spin_cw"
    if abs(s["dx"]) > 0.15:
        return "slide_right" if s["dx"] > 0 else "slide_left"
    if abs(s["dy"]) > 0.15:
        return "sink" if s["dy"] > 0 else "rise"
    return "out_and_back" if s["away"] > 0.15 else "still"


@pytest.mark.parametrize("label", scene.CLASSES)
def test_every_class_differs_from_every_other_by_its_measured_motion(label):
    ci = scene.CLASSES.index(label)
    for k in range(2):
        stats = motion_statistics(label, [5, 0, ci, k])
        assert classify(stats) == label, (k, {n: round(float(v), 3) for n, v in stats.items()})


def test_the_scene_is_its_own():
    """Neither module imports the project's synthetic generator (any import, also in functions)."""
    for path in (ROOT / "benchmarks" / "unseen_motion.py", ROOT / "benchmarks" / "common" / "unseen_scene.py"):
        names = imported_names(path)
        bad = {n for n in names if n.startswith("tsi.data.synthetic")}  # synthetic and synthetic_scene
        assert not bad, f"{path.name} imports {sorted(bad)}"
