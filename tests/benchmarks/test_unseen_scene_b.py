"""benchmarks.unseen_motion --scene b (benchmarks.common.unseen_scene_b): the same seed gives the
same videos (and a larger --train keeps the first ones), every class in the folder layout the
training loader reads with the scene in the marker, a variety of formats, the refusal to mix it with
a scene-a output in one folder (and --force replacing it), every class told apart from every other
by motion statistics measured on the pixels, and a scene that imports nothing of the project's own
synthetic generator nor of scene a."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import unseen_motion as um
from benchmarks.common import unseen_scene as scene_a
from benchmarks.common import unseen_scene_b as scene
from tsi.data.generated import sample_format
from tests.benchmarks.video_files import first_frame, videos
from tsi.data.formats import folder_samples
from tests.imported_names import imported_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unseen_b") / "set"
    assert um.main(["--out", str(out), "--scene", "b", "--train", "1", "--val", "1", "--seed", "0"]) == 0
    return out


def test_the_interface_of_scene_a():
    assert list(scene.CLASSES) == sorted(scene.CLASSES) and 10 <= len(scene.CLASSES) <= 12
    assert not set(scene.CLASSES) & set(scene_a.CLASSES) and not set(scene.FAMILIES) & set(scene_a.FAMILIES)
    assert scene.CODECS == scene_a.CODECS and min(scene.FRAMES) >= 24 and max(scene.FRAMES) <= 64
    assert all(15 <= f <= 30 for f in scene.FPS)
    with pytest.raises(ValueError, match="unknown class"):
        scene.render_clip("fade_in", np.random.default_rng(0), 24, (320, 240))


def test_layout_labels_marker_formats_and_the_loader(small):
    assert (small / "labels.txt").read_text().splitlines() == list(scene.CLASSES)
    marker = json.loads((small / um.MARKER).read_text())
    assert marker["complete"] is True and marker["format"] == um.MARKER_FORMAT and marker["scene"] == "b"
    assert marker["classes"] == list(scene.CLASSES) and marker["families"] == list(scene.FAMILIES)
    for split in ("train", "val"):
        samples, classes, _ = folder_samples(small, split)
        assert classes == list(scene.CLASSES) and len(samples) == len(scene.CLASSES)
        assert sorted(s.label for s in samples) == list(range(len(scene.CLASSES)))
        for s in samples:
            assert s.path.parent.name == classes[s.label] and s.path.name.startswith(f"{classes[s.label]}_0000.")
    assert not [p for p in small.rglob(".*")]  # no temporary left
    found = videos(small)
    sizes = {first_frame(p).shape[1::-1] for p in found}
    assert sizes <= set(scene.SIZES) and len(sizes) > 2
    assert {p.suffix for p in found} == {s for _, s in scene.CODECS}
    counts = set()
    for p in found[::4]:
        cap = cv2.VideoCapture(str(p))
        counts.add(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        cap.release()
    assert min(counts) >= scene.FRAMES[0] and max(counts) <= scene.FRAMES[1] and len(counts) > 1


def test_same_seed_same_videos_and_a_larger_train_keeps_the_first(small, tmp_path):
    before = {p.relative_to(small): first_frame(p) for p in videos(small / "train")}
    other = tmp_path / "again"
    assert um.main(["--out", str(other), "--scene", "b", "--train", "2", "--val", "0", "--seed", "0"]) == 0
    assert len(videos(other)) == 2 * len(scene.CLASSES)
    for rel, frame in before.items():
        assert np.array_equal(first_frame(other / rel), frame), rel
    assert um.main(["--out", str(other), "--scene", "b", "--train", "1", "--val", "0", "--seed", "1"]) == 0
    assert len(videos(other)) == len(scene.CLASSES)
    now = {p.relative_to(other).with_suffix(""): first_frame(p) for p in videos(other)}
    assert set(now) == {rel.with_suffix("") for rel in before}
    for rel, frame in before.items():  # another seed, other videos
        assert not np.array_equal(now[rel.with_suffix("")], frame), rel


def test_the_scenes_are_not_mixed_in_one_folder(small, tmp_path, capsys):
    a = tmp_path / "a"
    a.mkdir()
    (a / "labels.txt").write_text("x\n")
    (a / um.MARKER).write_text(json.dumps({"format": um.MARKER_FORMAT, "version": 1, "classes": ["still"]}))
    (a / "train" / "still").mkdir(parents=True)
    (a / "train" / "still" / "still_0000.mp4").write_bytes(b"a scene-a video")
    listing = sorted(p.relative_to(a) for p in a.rglob("*"))
    # a marker without "scene" is an output from before scene b: scene a's
    for argv, held in ((["--scene", "b"], a), ([], small), (["--scene", "a"], small)):
        before = {p: p.stat().st_mtime_ns for p in held.rglob("*")}
        assert um.main(["--out", str(held), "--train", "1", "--val", "0", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err and "--force" in err and "scene-" in err, err
        assert {p: p.stat().st_mtime_ns for p in held.rglob("*")} == before  # nothing written
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == listing
    # --force replaces the other scene's output, keeping no video of it
    assert um.main(["--out", str(a), "--scene", "b", "--train", "1", "--val", "0", "--force"]) == 0
    assert not (a / "train" / "still").exists()
    assert {p.parent.name for p in videos(a)} == set(scene.CLASSES)
    assert json.loads((a / um.MARKER).read_text())["scene"] == "b"


# ---- the motion of every class, measured on the pixels ----

def _rotation(a: np.ndarray, b: np.ndarray) -> float:
    """The turn (degrees, counter-clockwise positive) that best maps patch a onto patch b, each
    turned half way so that both are interpolated alike."""
    c, shape = (a.shape[1] / 2, a.shape[0] / 2), a.shape[1::-1]
    a, b = cv2.GaussianBlur(a, (0, 0), 1.5), cv2.GaussianBlur(b, (0, 0), 1.5)
    angles = np.arange(-30, 31, 2)
    err = [np.square(cv2.warpAffine(a, cv2.getRotationMatrix2D(c, t / 2, 1), shape)
                     - cv2.warpAffine(b, cv2.getRotationMatrix2D(c, -t / 2, 1), shape)).sum() for t in angles]
    return float(angles[int(np.argmin(err))])


def _reversals(x: np.ndarray, tol: float) -> int:
    """How many times ``x`` turns back by more than ``tol`` from its farthest point (hysteresis)."""
    count, direction, far = 0, 0, x[0]
    for v in x[1:]:
        if direction == 0 and abs(v - x[0]) > tol:
            direction, far = (1 if v > x[0] else -1), v
        elif direction:
            far = max(far, v) if direction > 0 else min(far, v)
            if (far - v) * direction > tol:
                count, direction, far = count + 1, -direction, v
    return count


def motion_statistics(label: str, seed: list[int]) -> dict[str, float]:
    """Measured on the pixels: the actor (with its shadow) is what differs between the clip and the
    same clip drawn without it; its energy-weighted centre taken back through the camera to nominal
    frame pixels (in frame heights), its radius of gyration (over the zoom), and the turn between
    consecutive frames of the patch around it (less the camera's roll)."""
    def draw(actor: bool):
        rng = np.random.default_rng(seed)
        fmt = sample_format(rng, scene)  # drawn first, as the generator does
        return fmt, *scene.render_clip(label, rng, fmt["frames"], fmt["size"], actor=actor)

    fmt, frames, truth = draw(True)
    _, empty, _ = draw(False)
    w, h = fmt["size"]
    ys, xs = np.mgrid[0:h:2, 0:w:2].astype(np.float32) + 0.5  # at half resolution (fast), in frame pixels
    half = int(truth["track"]["size"].max() * 0.35) + 3
    cam = truth["camera"]
    pos, radius, turns, patches = [], [], [], []
    for f, e, m, c, z in zip(frames, empty, cam["matrix"], truth["centre"], cam["zoom"]):
        d = cv2.resize(cv2.absdiff(f, e), (xs.shape[1], xs.shape[0]), interpolation=cv2.INTER_AREA)
        d = d.astype(np.float32).sum(axis=2)
        d[d < 12] = 0  # not the noise's saturation
        mass = float(d.sum()) + 1e-9
        cx, cy = float((d * xs).sum()) / mass, float((d * ys).sum()) / mass
        pos.append(np.linalg.solve(m[:, :2], np.array([cx, cy]) - m[:, 2]) / h)
        radius.append(np.sqrt(float((d * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum()) / mass) / z)
        pad = np.pad(d, half)
        x, y = int(round(c[0] / 2)) + half, int(round(c[1] / 2)) + half
        patches.append(pad[y - half:y + half, x - half:x + half] / (d.max() + 1e-9))
    for k in range(len(patches) - 1):
        turns.append(_rotation(patches[k], patches[k + 1]) - (cam["roll"][k + 1] - cam["roll"][k]))
    pos, radius, turns = np.array(pos), np.array(radius), np.array(turns)
    mean = pos.mean(0)
    rel = pos - mean
    area = 0.5 * float(np.sum(rel[:-1, 0] * rel[1:, 1] - rel[:-1, 1] * rel[1:, 0]))
    spread = float(np.mean(np.hypot(*rel.T)))
    net = pos[-1] - pos[0]
    length = float(np.hypot(*net))
    mid = float((pos[len(pos) // 2] - pos[0]) @ net) / max(length, 1e-9) ** 2
    return {"dx": net[0], "dy": net[1], "rx": np.ptp(pos[:, 0]), "ry": np.ptp(pos[:, 1]),
            "net": length, "extent": float(np.hypot(*(pos[:, None] - pos[None]).T).max()),  # the farthest apart
            "path": float(np.hypot(*np.diff(pos, axis=0).T).sum()),
            "area": area / (np.pi * spread ** 2 + 1e-9), "spread": spread, "mid": mid,
            "rev_x": _reversals(pos[:, 0], 0.06), "rev_y": _reversals(pos[:, 1], 0.06),
            "size": float(np.log(radius.max() / radius.min())), "turn": float(turns.sum()),
            "swing": float(np.abs(turns).sum())}


def classify(s: dict[str, float]) -> str:
    if abs(s["area"]) > 0.35 and s["spread"] > 0.06:
        return "orbit_ccw" if s["area"] < 0 else "orbit_cw"  # image y is down
    if abs(s["turn"]) > 125 and abs(s["dx"]) > 0.3 and s["ry"] < 0.1:
        # a wheel rolling right turns clockwise (negative)
        return "cartwheel" if np.sign(s["turn"]) == -np.sign(s["dx"]) else "cartwheel turning the wrong way"
    if s["size"] > np.log(1.35):
        return "pulse"
    if s["extent"] > 0.25:
        if s["rev_y"] >= 2 and abs(s["dx"]) > 0.3:
            return "zigzag"
        if s["rev_y"] >= 2 and s["rx"] < 0.15:
            return "bounce"
        if s["rev_x"] >= 1 and s["ry"] < 0.6 * s["rx"]:
            return "pendulum"
        if s["rev_x"] + s["rev_y"] == 0 and s["net"] > 0.25:
            return "wait_then_dash" if s["mid"] < 0.25 else "dash_then_stop" if s["mid"] > 0.75 else "glide"
        return "a large motion of no class"
    if max(s["rx"], s["ry"]) > 0.05 and s["path"] > 5 * max(s["rx"], s["ry"]):
        return "shake"
    if s["swing"] > 50 and abs(s["turn"]) < 0.5 * s["swing"]:
        return "rock"
    return "no motion of any class"


@pytest.mark.parametrize("label", scene.CLASSES)
def test_every_class_differs_from_every_other_by_its_measured_motion(label):
    ci = scene.CLASSES.index(label)
    for k in range(2):
        stats = motion_statistics(label, [5, 0, ci, k])
        assert classify(stats) == label, (k, {n: round(float(v), 3) for n, v in stats.items()})


def test_the_scene_is_its_own():
    """Scene b imports nothing of the project's synthetic generator nor of scene a (any import, also
    in functions), and nothing else of the project."""
    path = ROOT / "benchmarks" / "common" / "unseen_scene_b.py"
    names = imported_names(path)
    assert {n.split(".")[0] for n in names} <= {"__future__", "typing", "cv2", "numpy"}, sorted(names)
