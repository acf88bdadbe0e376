"""tsi.data.extract: videos -> frame folders (atomic, resumable, corrupt files listed, signals)."""

import json
import os
import signal

import cv2
import pytest

from tests.data.videos import index_of, write_corrupt, write_video
from tsi.data import extract as ex
from tsi.data.datasets import build_dataset
from runtime.common.video import count_frames, read_frames


@pytest.fixture
def videos(tmp_path):
    src = tmp_path / "videos"
    write_video(src / "train" / "jump" / "a.mp4", 7)
    write_video(src / "train" / "jump" / "b.avi", 5)
    write_video(src / "train" / "run" / "c.webm", 6)
    write_video(src / "val" / "run" / "d.mp4", 9)
    write_corrupt(src / "val" / "jump" / "broken.mp4")
    return src


def test_extracts_a_tree_of_videos(videos, tmp_path):
    out = tmp_path / "frames"
    res = ex.extract_tree(videos, out, short_side=32, workers=2, progress=False)
    assert (res["videos"], res["extracted"], res["frames"]) == (5, 4, 27)
    assert res["failed"] == [(str(videos / "val/jump/broken.mp4"), res["failed"][0][1])]
    assert (out / ex.FAILED).read_text().startswith(str(videos / "val/jump/broken.mp4") + "\t")
    frames = out / "train" / "jump" / "a"
    assert sorted(p.name for p in frames.iterdir()) == [f"img_{i:05d}.jpg" for i in range(1, 8)]
    imgs = read_frames(frames)
    assert imgs[0].shape == (32, 43, 3)  # 64x48 -> short side 32
    assert [index_of(cv2.resize(f, (64, 48))) for f in imgs] == list(range(7))
    assert count_frames(out / "train" / "run" / "c") == 6
    assert not (out / "val" / "jump" / "broken").exists()
    assert json.loads((out / ex.MANIFEST).read_text())["short_side"] == 32
    # the frame tree is a folder-format dataset, like the videos
    ds = build_dataset("folder", out, split="train", labels_only=True)
    assert ds.classes == ("jump", "run") and len(ds) == 3


def test_resumes_and_refuses_other_settings(videos, tmp_path):
    out = tmp_path / "frames"
    ex.extract_tree(videos, out, short_side=32, progress=False)
    stale = out / "train" / "jump" / f".x{ex.TMP_TAG}abc"  # a killed run's temporary folder
    stale.mkdir()
    (stale / "img_00001.jpg").write_bytes(b"half")
    write_video(videos / "val" / "jump" / "broken.mp4", 3)  # the user replaced the broken file
    res = ex.extract_tree(videos, out, short_side=32, progress=False)
    assert (res["skipped"], res["extracted"], res["failed"]) == (4, 1, [])
    assert not stale.exists() and not (out / ex.FAILED).exists()
    assert ex.main(["--src", str(videos), "--out", str(out), "--short-side", "64"]) == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    assert ex.main(["--src", str(videos), "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "x"
    assert ex.main(["--src", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 2


def test_two_videos_for_one_folder_is_an_error(tmp_path):
    write_video(tmp_path / "v" / "a.mp4", 3)
    write_video(tmp_path / "v" / "a.avi", 3)
    with pytest.raises(ValueError, match="both extract to"):
        ex.extract_tree(tmp_path / "v", tmp_path / "f", progress=False)


@pytest.mark.parametrize("workers,sig", [(1, signal.SIGTERM), (2, signal.SIGHUP)])
def test_signal_stops_cleanly_and_a_rerun_finishes(videos, tmp_path, monkeypatch, workers, sig):
    class KillAfterFirst:  # the progress bar: counts the finished videos, signals after the first
        def __init__(self, *args, **kwargs):
            self.n = 0

        def update(self, n=1):
            self.n += n
            if self.n == 1:
                os.kill(os.getpid(), sig)

        def close(self):
            pass

    monkeypatch.setattr(ex, "progress_bar", KillAfterFirst)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    out = tmp_path / "frames"
    res = ex.extract_tree(videos, out, short_side=0, workers=workers, progress=True)
    assert res["interrupted"] and res["extracted"] + len(res["failed"]) < 5
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are put back
    for d in out.rglob("*"):  # nothing half-written under a final name, no temporary folder left
        assert ex.TMP_TAG not in d.name
        if d.is_dir() and any(p.suffix == ".jpg" for p in d.iterdir()):
            src = next((videos / d.relative_to(out)).parent.glob(d.name + ".*"))
            assert count_frames(d) == count_frames(src, exact=True)
    monkeypatch.undo()
    res = ex.extract_tree(videos, out, progress=False)
    assert res["extracted"] + res["skipped"] == 4 and not res["interrupted"]


def test_a_name_that_is_not_utf8_is_listed_not_crashed_on_and_a_second_run_is_refused(videos, tmp_path):
    import shutil

    from runtime.common.files import OutputLockedError, exclusive

    odd = videos / "train" / "run" / os.fsdecode(b"caf\xe9.mp4")
    shutil.copy(videos / "val" / "run" / "d.mp4", odd)
    out = tmp_path / "frames"
    res = ex.extract_tree(videos, out, workers=1, progress=False)
    assert (str(odd), "its file name is not valid UTF-8 (OpenCV cannot open it); rename it") in res["failed"]
    assert os.fsencode(odd) in (out / ex.FAILED).read_bytes()  # listed as the file system holds it
    with exclusive(out):  # another run writing OUT now
        with pytest.raises(OutputLockedError, match="being written by another run"):
            ex.extract_tree(videos, out, workers=1, progress=False)
