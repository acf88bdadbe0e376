"""Bad data and bad resumes given to tsi-train, tsi-evaluate and tsi-extract (issue 19): each row is
run as a subprocess (two at a time) and must end with its exit status and one error line naming the
problem and the flag or file: no traceback, no signal death (a file name that is not UTF-8 crashed
OpenCV: exit 139), found before an epoch starts, within the doors' peak memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime.common.files import exclusive
from tests.doors.helpers import _MEASURE, PEAK_MB, REPO

ODD = os.fsdecode(b"caf\xe9.mp4")  # a Latin-1 name: not UTF-8


def _corrupt(path: Path) -> None:
    path.write_bytes(b"\x00not a video" * 300)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from tests.data.videos import write_video
    from tests.export.helpers import make_checkpoint
    from tsi.data.synthetic import generate

    root = tmp_path_factory.mktemp("train-doors")
    generate(root / "data", train=1, val=1, seed=0, frames=8, size=(64, 48), progress=False)
    videos = sorted((root / "data").rglob("*.mp4"))
    shutil.copytree(root / "data", root / "allbad")
    for p in (root / "allbad").rglob("*.mp4"):
        _corrupt(p)
    shutil.copytree(root / "data", root / "deadclass")
    for p in (root / "deadclass" / "train" / "recede").iterdir():
        _corrupt(p)
    shutil.copytree(root / "data", root / "odd")  # recede's one training video has a Latin-1 name
    for p in list((root / "odd" / "train" / "recede").iterdir()):
        p.rename(p.parent / ODD)
    for k in range(4):  # a flat layout (hash split): class b has only Latin-1 names
        write_video(root / "flat" / "a" / f"x{k}.mp4", 8)
    (root / "flat" / "b").mkdir()
    for k in range(6):
        shutil.copy(videos[0], root / "flat" / "b" / os.fsdecode(b"caf\xe9%d.mp4" % k))
    (root / "oddsrc").mkdir()
    shutil.copy(videos[0], root / "oddsrc" / ODD)
    rel = [p.relative_to(root / "data").as_posix() for p in videos if "/train/" in p.as_posix()]
    (root / "train.txt").write_text(f"{rel[0]} 0\n{rel[1]} 1\n")
    (root / "val.txt").write_text(f"{rel[0]} 0\n{rel[2]} 2\n")  # label 2: beyond the training split's
    (root / "dup.txt").write_text("appear\napproach\nappear\n")
    (root / "dup.json").write_text('{"appear": "0", "appear": "1"}')
    (root / "bad.json").write_text('["appear", ')
    (root / "latin1.txt").write_bytes("café\nthé\n".encode("latin-1"))
    ckpt = make_checkpoint(root / "ok.pt")
    for name in ("res-arch", "res-frames", "res-init"):
        (root / name).mkdir()
        shutil.copy(ckpt, root / name / "last.pt")
    (root / "res-trunc").mkdir()
    (root / "res-trunc" / "last.pt").write_bytes(ckpt.read_bytes()[:3000])
    return root


def _train(data: str, out: str, *extra: str) -> list[str]:
    return ["-m", "tsi.train", "--data", f"{{root}}/{data}", "--out", f"{{root}}/{out}", "--arch", "tsi_r18",
            "--frames", "4", "--input-size", "32", "--base-width", "8", "--sme-reduction", "2",
            "--workers", "0", "--device", "cpu", "--span-frames", "8", "--epochs", "1", "--max-steps", "1", *extra]


E = "tsi-train: error: "
CASES = [
    # (id, argv with {root}, exit status, what the error line says, what else stderr must say)
    ("labels-duplicate", _train("data", "o1", "--labels", "{root}/dup.txt"), 2,
     E + "labels file {root}/dup.txt: duplicate class names ['appear']", ""),
    ("labels-json-duplicate", _train("data", "o2", "--labels", "{root}/dup.json"), 2,
     E + "labels file {root}/dup.json: duplicate class names ['appear']", ""),
    ("labels-bad-json", _train("data", "o3", "--labels", "{root}/bad.json"), 2,
     E + "labels file {root}/bad.json: not valid JSON", ""),
    ("labels-latin1", _train("data", "o4", "--labels", "{root}/latin1.txt"), 2,
     E + "labels file {root}/latin1.txt is not UTF-8 text", ""),
    ("val-list-label-beyond", _train("data", "o5", "--format", "list", "--train-list", "{root}/train.txt",
                                     "--val-list", "{root}/val.txt"), 2,
     E + "--val-list: list:data/val: label 2 is beyond the model's 2 classes", ""),
    ("every-video-corrupt", _train("allbad", "o6"), 2, E + "--data: none of the 11 videos of folder:allbad/train decodes", ""),
    ("class-all-corrupt", _train("deadclass", "o7"), 2,
     E + "--data: class(es) ['recede'] of folder:deadclass/train have no decodable video", ""),
    ("non-utf8-name-split", _train("odd", "o8"), 2, E + "--data: class(es) ['recede'] of folder:odd/train",
     "file names are not UTF-8"),
    ("non-utf8-name-flat", _train("flat", "o9"), 2, E + "--data: class(es) ['b'] of folder:flat/train",
     "file names are not UTF-8"),
    ("resume-truncated", _train("data", "res-trunc", "--resume"), 2,
     E + "--resume: {root}/res-trunc/last.pt: truncated or corrupt checkpoint", ""),
    ("resume-other-arch", _train("data", "res-arch", "--resume", "--arch", "tsi_r50"), 2,
     E + "--arch tsi_r50 differs from the resumed run's tsi_r18 ({root}/res-arch/last.pt)", ""),
    ("resume-other-frames", _train("data", "res-frames", "--resume", "--frames", "8"), 2,
     E + "--frames 8 differs from the resumed run's 4 ({root}/res-frames/last.pt)", ""),
    ("resume-pretrained", _train("data", "res-init", "--resume", "--pretrained", "{root}/ok.pt"), 2,
     E + "--pretrained initialises a new model; --resume continues", ""),
    ("train-out-locked", _train("data", "locked"), 2, E + "--out {root}/locked is being written by another run now", ""),
    ("evaluate-out-locked", ["-m", "tsi.evaluate", "--checkpoint", "{root}/ok.pt", "--data", "{root}/data",
                             "--out", "{root}/locked"], 2,
     "tsi-evaluate: error: --out {root}/locked is being written by another run now", ""),
    ("extract-non-utf8-name", ["-m", "tsi.data.extract", "--src", "{root}/oddsrc", "--out", "{root}/frames",
                               "--workers", "1"], 0, None, "its file name is not valid UTF-8"),
]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, *argv], cwd=REPO,
                              capture_output=True, text=True, errors="backslashreplace", timeout=90)
    except subprocess.TimeoutExpired as e:  # this row fails, the others still run
        return subprocess.CompletedProcess(argv, -9, "0", f"timed out after 90 s: {e.stderr!r:.1500}")


@pytest.fixture(scope="module")
def results(root):
    """Every row at once, two at a time (the rows are independent: each has its own --out), while
    this process holds the lock of ``locked`` as a concurrent run would."""
    with exclusive(root / "locked"), ThreadPoolExecutor(2) as pool:
        runs = pool.map(_run, [[a.format(root=root) for a in argv] for _, argv, *_ in CASES])
        return dict(zip((c[0] for c in CASES), runs))


@pytest.mark.parametrize("case, argv, status, first, also", CASES, ids=[c[0] for c in CASES])
def test_bad_data_is_one_line(root, results, case, argv, status, first, also):
    r = results[case]
    err = r.stderr.strip().splitlines()
    errors = [line for line in err if "error:" in line and " ERROR " not in line]
    assert r.returncode == status, (case, r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    if first is None:
        assert not errors, errors
    else:
        assert len(errors) == 1 and first.format(root=root) in errors[0], err[-5:]
    assert also in r.stderr, r.stderr[-1500:]
    assert "epoch 1" not in r.stderr  # found before training
    assert int(r.stdout.split()[-1]) / 1024 < PEAK_MB, f"{case}: peak RSS {int(r.stdout.split()[-1]) // 1024} MB"
