import json

import numpy as np
import pytest

from tsi.data.datasets import build_dataset
from runtime.common.video import count_frames, read_video
from tsi.data.synthetic import (CLASSES, REVERSED_PAIRS, generate, main, render_clip, sample_track,
                                write_sequence_video)

SMALL = dict(train=1, val=1, frames=8, size=(64, 48), fps=10.0, progress=False)


def decoded(out):
    return {p.relative_to(out).as_posix(): np.stack(read_video(p)) for p in sorted(out.rglob("*.mp4"))}


def test_generate_layout_and_determinism(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, seed=3, **SMALL)
    generate(b, seed=3, **SMALL)
    generate(c, seed=4, **SMALL)
    for split in ("train", "val"):
        assert sorted(p.name for p in (a / split).iterdir()) == sorted(CLASSES)
    assert (a / "labels.txt").read_text().split() == list(CLASSES) == sorted(CLASSES)
    marker = json.loads((a / "synthetic.json").read_text())
    assert marker["seed"] == 3 and marker["complete"] and marker["size"] == [64, 48]
    va, vb, vc = decoded(a), decoded(b), decoded(c)
    assert len(va) == 2 * len(CLASSES) and va.keys() == vb.keys()
    for name, frames in va.items():
        assert frames.shape == (8, 48, 64, 3)
        assert np.array_equal(frames, vb[name]), f"{name} differs between two runs with one seed"
    assert any(not np.array_equal(va[n], vc[n]) for n in va)
    assert not list(a.rglob(".*.tmp*")), "temporary file left behind"
    # the folder format reads it back with the classes in CLASSES order
    ds = build_dataset("folder", a, split="val", labels_only=True)
    assert ds.classes == CLASSES and [s.label for s in ds.samples] == list(range(len(CLASSES)))


def test_overwrite_rules(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="synthetic.json"):
        generate(out, **SMALL)
    assert main(["--out", str(out), "--train", "1", "--val", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    generate(out, force=True, **SMALL)
    assert (out / "notes.txt").read_text() == "mine"
    # a previous synthetic output may be regenerated; videos of the larger run are removed
    generate(out, **{**SMALL, "train": 2})
    assert len(list((out / "train" / "approach").glob("*.mp4"))) == 2
    generate(out, **SMALL)
    assert len(list((out / "train" / "approach").glob("*.mp4"))) == 1


def test_reversed_pairs_are_exact_reversals():
    assert len(CLASSES) >= 10 and "no_motion" in CLASSES
    for fwd, back in REVERSED_PAIRS:
        a = render_clip(fwd, np.random.default_rng(11), frames=8, size=(64, 48))
        b = render_clip(back, np.random.default_rng(11), frames=8, size=(64, 48))
        assert all(np.array_equal(x, y) for x, y in zip(a, b[::-1])), (fwd, back)
        assert not np.array_equal(a[0], a[-1])  # and the clip does change over time


def test_tracks_have_the_class_trend():
    rng = np.random.default_rng(0)
    for _ in range(20):
        trk = {c: sample_track(c, rng, 32, (160, 128)) for c in CLASSES}
        assert trk["approach"]["size"][-1] > 1.5 * trk["approach"]["size"][0]
        assert trk["recede"]["size"][0] > 1.5 * trk["recede"]["size"][-1]
        assert np.all(np.diff(trk["approach"]["size"]) >= 0)
        assert trk["move_right"]["x"][-1] - trk["move_right"]["x"][0] > 0.3 * 160
        assert trk["move_left"]["x"][0] - trk["move_left"]["x"][-1] > 0.3 * 160
        assert trk["move_down"]["y"][-1] - trk["move_down"]["y"][0] > 0.3 * 128
        assert trk["move_up"]["y"][0] - trk["move_up"]["y"][-1] > 0.3 * 128
        assert trk["rotate_cw"]["angle"][0] - trk["rotate_cw"]["angle"][-1] >= 100
        assert trk["rotate_ccw"]["angle"][-1] - trk["rotate_ccw"]["angle"][0] >= 100
        assert trk["appear"]["alpha"][0] == 0 and trk["appear"]["alpha"][-1] == 1
        assert trk["disappear"]["alpha"][0] == 1 and trk["disappear"]["alpha"][-1] == 0
        assert all(np.ptp(v) == 0 for v in trk["no_motion"].values())
        for c in CLASSES:  # the object centre stays in the frame
            assert 0 < trk[c]["x"].min() and trk[c]["x"].max() < 160
            assert 0 < trk[c]["y"].min() and trk[c]["y"].max() < 128


def test_write_sequence_video(tmp_path):
    labels = ["move_left", "no_motion", "approach"]
    path = tmp_path / "seq" / "live.mp4"
    segs = write_sequence_video(path, labels, seed=5, frames_per_segment=6, size=(64, 48), fps=10)
    assert segs == [{"label": "move_left", "start_frame": 0, "end_frame": 6},
                    {"label": "no_motion", "start_frame": 6, "end_frame": 12},
                    {"label": "approach", "start_frame": 12, "end_frame": 18}]
    assert count_frames(path, exact=True) == 18
    assert read_video(path, [17])[0].shape == (48, 64, 3)
    with pytest.raises(ValueError, match="unknown synthetic class"):
        write_sequence_video(tmp_path / "x.mp4", ["jump"], seed=0)
    assert not (tmp_path / "x.mp4").exists()


def test_sequence_video_with_lengths_per_action_and_an_idle_stretch(tmp_path):
    """None is an idle stretch: the same scene and camera with nobody in it, left out of the ground
    truth; every other segment is drawn exactly as with an action there."""
    lengths = [6, 10, 8, 4]
    idle = write_sequence_video(tmp_path / "idle.mp4", ["move_left", None, "approach", "move_left"], seed=5,
                                frames_per_segment=lengths, size=(64, 48), fps=10)
    assert idle == [{"label": "move_left", "start_frame": 0, "end_frame": 6},
                    {"label": "approach", "start_frame": 16, "end_frame": 24},
                    {"label": "move_left", "start_frame": 24, "end_frame": 28}]
    write_sequence_video(tmp_path / "full.mp4", ["move_left", "no_motion", "approach", "move_left"], seed=5,
                         frames_per_segment=lengths, size=(64, 48), fps=10)
    a = np.stack(read_video(tmp_path / "idle.mp4")).astype(float)
    b = np.stack(read_video(tmp_path / "full.mp4")).astype(float)
    diff = np.abs(a - b).max(axis=(1, 2, 3))
    assert diff[:6].max() == 0  # the same draws before the idle stretch
    assert diff[6:16].min() > 40, diff  # the object (>= 80 levels off the background) is absent there
    with pytest.raises(ValueError, match="3 lengths for 4 labels"):
        write_sequence_video(tmp_path / "y.mp4", ["move_left"] * 4, seed=0, frames_per_segment=[6, 6, 6])


def test_sequence_cli_writes_video_and_ground_truth(tmp_path):
    from runtime.common.video import count_frames
    from tsi.data.synthetic import run

    out = tmp_path / "sample.mp4"
    info = run(["--out", str(out), "--sequence", "move_left", "appear", "--frames", "8",
                "--size", "64x48"])
    assert [s["label"] for s in info["segments"]] == ["move_left", "appear"]
    assert count_frames(out, exact=True) == 16
    assert json.loads(out.with_suffix(".json").read_text())["segments"][1]["start_frame"] == 8
    with pytest.raises(FileExistsError, match="exists"):
        run(["--out", str(out), "--sequence", "appear", "--frames", "8", "--size", "64x48"])


def test_hard_setting_reversal_distractors_and_camera():
    from tsi.data.synthetic_scene import render_clip_hard

    for fwd, back in REVERSED_PAIRS:
        a = render_clip_hard(fwd, np.random.default_rng(3), 6, (96, 64))
        b = render_clip_hard(back, np.random.default_rng(3), 6, (96, 64))
        assert all(np.array_equal(x, y) for x, y in zip(a, b[::-1])), (fwd, back)
    # no_motion's actor stands still, yet the frames change: distractors and the camera move
    still = render_clip_hard("no_motion", np.random.default_rng(4), 6, (96, 64))
    assert np.abs(still[0].astype(int) - still[-1].astype(int)).mean() > 5
    easy_obj = sample_track("approach", np.random.default_rng(0), 8, (160, 128))["size"][0]
    hard_obj = sample_track("approach", np.random.default_rng(0), 8, (160, 128),
                            object_scale=(0.14, 0.22))["size"][0]
    assert hard_obj < 0.75 * easy_obj


def test_hard_setting_varies_size_fps_and_codec(tmp_path):
    from tsi.data.synthetic_scene import HARD_DURATION_S

    out = tmp_path / "hard"
    marker = generate(out, train=2, val=0, seed=1, progress=False, setting="hard")
    assert marker["setting"] == "hard" and marker["complete"] and marker["size"] is None
    videos = sorted(p for p in (out / "train").rglob("*") if p.is_file())
    assert len(videos) == 2 * len(CLASSES)
    sizes, counts = set(), set()
    for p in videos:
        n = count_frames(p, exact=True)
        f = read_video(p, [0, n - 1])
        sizes.add(f[0].shape[:2])
        counts.add(n)
        assert n in {max(2, round(HARD_DURATION_S * fps)) for fps in marker["fps_choices"]}
    assert len(sizes) > 1 and len(counts) > 1 and len({p.suffix for p in videos}) > 1
    assert min(h for h, _ in sizes) >= 144  # larger than the easy 160x128
    # the folder format reads every container back, and a rerun as easy replaces them all
    assert len(build_dataset("folder", out, split="train", labels_only=True)) == len(videos)
    generate(out, train=1, val=0, seed=1, frames=4, size=(64, 48), progress=False)
    assert sorted(p.suffix for p in (out / "train").rglob("*.*")) == [".mp4"] * len(CLASSES)
    with pytest.raises(ValueError, match="setting"):
        generate(out, train=1, val=0, setting="medium", progress=False)
