"""Bad inputs to the export commands (``export/build_engine.py`` = tsi-build-engine,
``python -m export.stream_export`` = tsi-export-online and ``python -m export.triton_repo`` =
tsi-triton-repo), as a careless user types them: each case is
a subprocess that must exit 2 with one line naming the problem (the message on one line of stderr:
not also in the stage log; no traceback), found before the export starts, within 500 MB of peak
memory. Then two builds into one
--out at once: the second is refused and the first's files are intact, and what an interrupted
build left in --out is removed by the next."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.doors.helpers import _MEASURE, PEAK_MB, REPO

BUILD = ["export/build_engine.py"]
ONLINE = ["-m", "export.stream_export"]
TRITON = ["-m", "export.triton_repo"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.export.helpers import make_checkpoint, write_video

    root = tmp_path_factory.mktemp("export_doors")
    ckpt = make_checkpoint(root / "ok.pt")
    wrong = torch.load(ckpt, weights_only=True)
    wrong["card"]["frames"] = 8
    torch.save(wrong, root / "wrong_card.pt")
    from tests.export.helpers import make_causal_checkpoint

    make_causal_checkpoint(root / "causal.pt")
    (root / "bad.onnx").write_bytes(b"\x12\x34 not onnx" * 30)
    (root / "notes.txt").write_text("not a folder\n")
    for k in range(10):  # ten one-frame videos
        write_video(root / "short" / f"s{k}.mp4", frames=1, seed=k)
    (root / "theirs").mkdir()
    (root / "theirs" / "ok.onnx").write_bytes(b"a user's own file")
    (root / "theirs" / "ok.online.onnx").write_bytes(b"a user's own file")
    from tests.runtime.helpers import make_card as colour_card, make_onnx

    make_onnx(root / "colour.onnx", card=colour_card())
    (root / "x.engine").write_bytes(b"an engine")
    (root / "repo" / "colour").mkdir(parents=True)  # a user's model folder
    return root


CASES = [
    # (id, argv with {root}, the error line starts with)
    ("build-missing-checkpoint", [*BUILD, "--checkpoint", "{root}/nope.pt", "--out", "{root}/b1"],
     "error: checkpoint not found: {root}/nope.pt"),
    ("build-corrupt-onnx", [*BUILD, "--onnx", "{root}/bad.onnx", "--out", "{root}/b2"],
     "error: {root}/bad.onnx: not a readable ONNX model"),
    ("build-int8-without-calib-dir", [*BUILD, "--checkpoint", "{root}/ok.pt", "--int8", "--out", "{root}/b3"],
     "error: --int8 needs --calib-dir"),
    ("build-out-is-a-file", [*BUILD, "--checkpoint", "{root}/ok.pt", "--out", "{root}/notes.txt"],
     "error: --out {root}/notes.txt: {root}/notes.txt is a file, not a folder"),
    ("build-out-below-a-file", [*BUILD, "--checkpoint", "{root}/ok.pt", "--out", "{root}/notes.txt/out"],
     "error: --out {root}/notes.txt/out: {root}/notes.txt is a file, not a folder"),
    ("build-out-unwritable", [*BUILD, "--checkpoint", "{root}/ok.pt", "--out", "/sys/tsi_edge_doors/out"],
     "error: --out /sys/tsi_edge_doors/out: cannot write there"),
    ("build-wrong-card", [*BUILD, "--checkpoint", "{root}/wrong_card.pt", "--out", "{root}/b4"],
     "error: {root}/wrong_card.pt: model card does not match the model: card T=8 but model T=4"),
    ("build-foreign-files", [*BUILD, "--checkpoint", "{root}/ok.pt", "--out", "{root}/theirs"],
     "error: {root}/theirs holds ok.onnx made from another source (or not by this tool); pass --force"),
    ("build-calib-dir-is-a-file", [*BUILD, "--checkpoint", "{root}/ok.pt", "--int8", "--calib-dir",
                                   "{root}/notes.txt", "--out", "{root}/b5"], "error: --calib-dir {root}/notes.txt: not a folder"),
    ("build-short-calibration-videos", [*BUILD, "--checkpoint", "{root}/ok.pt", "--int8", "--calib-dir",
                                        "{root}/short", "--out", "{root}/b6"],
     "error: calibration folder {root}/short: 0 usable clip(s) (10 video(s), 0 unreadable, 10 shorter than the "
     "model's 4 frames); at least 8 are needed"),
    ("online-missing-checkpoint", [*ONLINE, "--checkpoint", "{root}/nope.pt", "--out", "{root}/s1"],
     "error: checkpoint not found: {root}/nope.pt"),
    ("online-not-causal", [*ONLINE, "--checkpoint", "{root}/ok.pt", "--out", "{root}/s2"],
     "error: {root}/ok.pt: not a causal model"),
    ("online-int8-without-calib-dir", [*ONLINE, "--checkpoint", "{root}/ok.pt", "--int8", "--out", "{root}/s3"],
     "error: --int8 needs --calib-dir"),
    ("online-short-calibration-videos", [*ONLINE, "--checkpoint", "{root}/causal.pt", "--int8", "--calib-dir",
                                         "{root}/short", "--out", "{root}/s4"],
     "error: calibration folder {root}/short: 0 usable clip(s) (10 video(s), 0 unreadable, 10 shorter than the "
     "model's 4 frames); at least 8 are needed"),
    ("online-out-is-a-file", [*ONLINE, "--checkpoint", "{root}/ok.pt", "--out", "{root}/notes.txt"],
     "error: --out {root}/notes.txt: {root}/notes.txt is a file, not a folder"),
    ("online-out-unwritable", [*ONLINE, "--checkpoint", "{root}/ok.pt", "--out", "/sys/tsi_edge_doors/out"],
     "error: --out /sys/tsi_edge_doors/out: cannot write there"),
    ("online-existing-files", [*ONLINE, "--checkpoint", "{root}/ok.pt", "--out", "{root}/theirs"],
     "error: would overwrite {root}/theirs/ok.online.onnx; pass --force"),
    ("triton-missing-model", [*TRITON, "--model", "{root}/nope.onnx", "--out", "{root}/r1"],
     "error: model file not found: {root}/nope.onnx"),
    ("triton-corrupt-onnx", [*TRITON, "--model", "{root}/bad.onnx", "--out", "{root}/r2"],
     "error: cannot read the ONNX graph {root}/bad.onnx"),
    ("triton-out-is-a-file", [*TRITON, "--model", "{root}/colour.onnx", "--out", "{root}/notes.txt"],
     "error: --out {root}/notes.txt: a file, not a folder"),
    ("triton-out-unwritable", [*TRITON, "--model", "{root}/colour.onnx", "--out", "/sys/tsi_edge_doors/repo"],
     "error: --out /sys/tsi_edge_doors/repo: cannot write there"),
    ("triton-existing-model", [*TRITON, "--model", "{root}/colour.onnx", "--out", "{root}/repo"],
     "error: {root}/repo/colour exists: pass --force"),
    ("triton-engine-without-graph", [*TRITON, "--model", "{root}/x.engine", "--out", "{root}/r3"],
     "error: {root}/x.engine: an engine's inputs and outputs are read from the ONNX graph it was built from"),
    ("build-triton-preferred-over-max", [*BUILD, "--checkpoint", "{root}/ok.pt", "--out", "{root}/b7", "--triton-repo",
                                     "{root}/r4", "--triton-preferred-batch", "16"],
     "error: --triton-preferred-batch sizes must be 1 to the max batch 8"),
]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def results(files):
    """Every case at once, two at a time (2 cores)."""
    with ThreadPoolExecutor(2) as pool:
        runs = pool.map(_run, ([a.format(root=files) for a in c[1]] for c in CASES))
        return dict(zip((c[0] for c in CASES), runs))


@pytest.mark.parametrize("case, first", [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(files, results, case, first):
    r = results[case]
    first = first.format(root=files)
    assert r.returncode == 2, (case, r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(first), r.stderr[-1500:]  # not twice (the stage log)
    assert "[export" not in r.stderr, r.stderr[-1500:]  # found before the heavy work
    assert int(r.stdout.split()[-1]) / 1024 < PEAK_MB, f"{case}: peak RSS {int(r.stdout.split()[-1]) // 1024} MB"
    assert (files / "theirs" / "ok.onnx").read_bytes() == b"a user's own file"
    assert not any((files / "repo" / "colour").iterdir())


def test_two_builds_into_one_out(files, tmp_path):
    """Builds of two checkpoints into one --out and --name: while the first runs, the second is
    refused at once; after it, the second is refused for the first's files. The first's files are
    intact, and the stale temporaries an interrupted build left (kill -9) are gone."""
    from export.onnx_export import read_card_from_onnx
    from runtime.common.files import file_sha256
    from tests.export.helpers import make_checkpoint

    other = make_checkpoint(tmp_path / "other.pt", seed=1)
    out = tmp_path / "out"
    stale = [out / ".staging-k9x2ab_c" / ".m.ab12cd34.tmp", out / ".m.ab12cd34.tmp", out / ".m.fp16.zz99yy88.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half an engine")
    argv = lambda ckpt: [sys.executable, *BUILD, "--checkpoint", str(ckpt), "--out", str(out),  # noqa: E731
                         "--name", "m", "--fp16"]
    first = subprocess.Popen(argv(files / "ok.pt"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        staging = lambda: [p for p in out.glob(".staging-*") if p != stale[0].parent]  # noqa: E731
        while not staging() and first.poll() is None:  # its staging folder: it holds --out
            assert time.monotonic() < deadline, "the first build never started building"
            time.sleep(0.05)
        t0 = time.monotonic()
        second = subprocess.run(argv(other), cwd=REPO, capture_output=True, text=True, timeout=60)
        refused_in = time.monotonic() - t0
        assert first.poll() is None, "the first build finished before the second started: no overlap tested"
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-1500:]
    assert second.stderr.strip().splitlines()[-1] == (f"error: --out {out} is being built by another run now; "
                                                      "wait for it to finish or choose another --out")
    assert refused_in < 20
    assert read_card_from_onnx(out / "m.onnx").source_sha256 == file_sha256(files / "ok.pt")
    assert not any(p.exists() for p in stale) and not (out / ".staging-k9x2ab_c").exists()
    assert not [p for d in (tmp_path, out) for p in d.iterdir() if p.name.startswith(".")]  # no lock left
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = subprocess.run(argv(other), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].startswith(
        f"error: {out} holds m.onnx, m.json, m.plugin.onnx, m.fp16.onnx made from another source"), again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
