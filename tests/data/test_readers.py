import numpy as np
import pytest

from tests.data.videos import index_of, write_corrupt, write_frame_folder, write_video
from runtime.common.video import (ShortVideoError, VideoDecodeError, count_frames, natural_key, read_frames,
                              read_sampled, read_video)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm", ".mkv"])
def test_read_video_containers(tmp_path, suffix):
    path = write_video(tmp_path / f"v{suffix}", 12)
    frames = read_video(path)
    assert len(frames) == 12 and count_frames(path) == 12 and count_frames(path, exact=True) == 12
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert [index_of(f) for f in frames] == list(range(12))
    # a subset in any order with repeats, decoded in one forward pass
    assert [index_of(f) for f in read_video(path, [7, 2, 2, 11])] == [7, 2, 2, 11]


def test_frame_folder_natural_order(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 12)  # 1.jpg .. 12.jpg
    assert count_frames(folder) == 12
    assert [index_of(f) for f in read_frames(folder)] == list(range(12))
    assert [index_of(f) for f in read_frames(folder, [10, 1, 1])] == [10, 1, 1]
    assert sorted(["img_10.jpg", "img_2.jpg"], key=natural_key) == ["img_2.jpg", "img_10.jpg"]


def test_errors_name_the_file(tmp_path):
    bad = write_corrupt(tmp_path / "bad.mp4")
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        read_video(bad)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        count_frames(bad)
    with pytest.raises(VideoDecodeError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no image"):
        read_frames(tmp_path / "empty")
    assert issubclass(VideoDecodeError, RuntimeError)
    path = write_video(tmp_path / "v.mp4", 5)
    with pytest.raises(ShortVideoError) as e:
        read_video(path, [2, 9])
    assert e.value.num_frames == 5


def test_read_sampled_picks_from_the_count(tmp_path):
    for path in (write_video(tmp_path / "v.webm", 9), write_video(tmp_path / "v.mp4", 9),
                 write_frame_folder(tmp_path / "f", 9)):
        frames, idx = read_sampled(path, lambda n: np.arange(0, n, 4))
        assert idx.tolist() == [0, 4, 8] and [index_of(f) for f in frames] == [0, 4, 8]


def test_header_overstating_the_count_is_repicked(tmp_path):
    path = write_video(tmp_path / "v.avi", 24)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"  # the header still says 24 frames, fewer decode
    cut.write_bytes(data[: int(len(data) * 0.7)])
    n = count_frames(cut, exact=True)
    assert count_frames(cut) == 24 and 1 < n < 24
    frames, idx = read_sampled(cut, lambda k: np.linspace(0, k - 1, 4).astype(int))
    assert idx[-1] == n - 1 and [index_of(f) for f in frames] == idx.tolist()


_NOT_UTF8 = r'''
import os, sys
from pathlib import Path
from runtime.common.video import VideoDecodeError, count_frames, read_frames, read_video
root = Path(sys.argv[1])
for what, call in (("video", lambda: read_video(root / os.fsdecode(b"caf\xe9.mp4"))),
                   ("count", lambda: count_frames(root / os.fsdecode(b"caf\xe9.mp4"))),
                   ("folder", lambda: read_frames(root / "frames"))):
    try:
        call()
    except VideoDecodeError as e:
        print(what, e)
'''


def test_a_name_that_is_not_utf8_is_refused_not_a_crash(tmp_path):
    """OpenCV's binding segfaults on a str that cannot be encoded as UTF-8 (``caf\\xe9.mp4`` written
    by a Latin-1 system): the readers refuse the name with VideoDecodeError instead. In a child
    process, as the old behaviour kills the process."""
    import os
    import subprocess
    import sys

    from runtime.common.video import VideoDecodeError, check_openable_path, shown_path

    name = os.fsdecode(b"caf\xe9.mp4")
    write_video(tmp_path / "ok.mp4", 3)
    os.replace(tmp_path / "ok.mp4", tmp_path / name)
    for f in write_frame_folder(tmp_path / "frames", 3).iterdir():  # cv2.imwrite cannot write them either
        os.replace(f, f.with_name(os.fsdecode(b"\xff") + f.name))
    r = subprocess.run([sys.executable, "-c", _NOT_UTF8, str(tmp_path)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, (r.returncode, r.stderr[-800:])
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["video", "count", "folder"], r.stdout
    assert all("not valid UTF-8" in ln for ln in lines), lines
    assert "caf\\xe9.mp4" in lines[0] and "\\xff1.jpg" in lines[2], lines
    assert shown_path(tmp_path / name).endswith("caf\\xe9.mp4")
    assert check_openable_path(tmp_path / "café.mp4") == str(tmp_path / "café.mp4")  # valid UTF-8 is fine
    with pytest.raises(VideoDecodeError, match="NUL"):
        check_openable_path("a\0b.mp4")
