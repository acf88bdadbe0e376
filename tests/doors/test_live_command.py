"""Bad inputs to ``tsi-live`` (``python -m runtime.live``), as a careless user types them: each case
is run as a subprocess and must exit 2 with one line on stderr naming the problem and the flag or
file (no traceback, no signal death), found before any heavy work, within 500 MB of peak memory
(the child's peak RSS), and must leave no output behind."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from runtime.assets import DEMO_ONNX
from tests.doors.helpers import PEAK_MB, REPO, peak_mb, run_measured
from tests.runtime.helpers import write_video

ODD = os.fsdecode(b"caf\xe9.mp4")  # a Latin-1 name: not UTF-8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clip under plain and awkward names, and the bad files the cases name."""
    root = tmp_path_factory.mktemp("live_doors")
    clip = write_video(root / "clip.mp4", ["red"] * 10)
    for name in (ODD, "..mp4"):
        shutil.copy(clip, root / name)
    (root / "sources.jsonl").write_text(f"{clip}\n")
    shutil.copy(DEMO_ONNX, root / "model.jsonl")
    (root / "notmodel.onnx").write_text("not a model\n")
    (root / "truncated.pt").write_bytes((REPO / "tsi/assets/demo_tsi_r18.pt").read_bytes()[:4000])
    (root / "bad.json").write_text("{not json\n")
    (root / "bad_line.txt").write_text(f"{clip}\nfile://\n")
    (root / "latin1.txt").write_bytes(b"caf\xe9.mp4\n")
    (root / "outdir.jsonl").mkdir()
    return root


CASES = [
    # (id, arguments after the base ones, with {root} and {out} (the case's own output folder);
    # words of the one error line)
    ("source-not-utf8", ["--source", f"{{root}}/{ODD}"], "caf\\xe9.mp4: the file name is not valid UTF-8"),
    ("sources-missing", ["--source", "{root}/a.mp4", "--source", "b={root}/b.mp4", "--source", "{root}/clip.mp4",
                         "--out-jsonl", "{out}/{{name}}.jsonl"], "video files not found: {root}/a.mp4, {root}/b.mp4"),
    ("dotdot-name-in-template", ["--source", "{root}/..mp4", "--out-jsonl", "{out}/{{name}}.jsonl"],
     "--out-jsonl {out}/{{name}}.jsonl: source {root}/..mp4 gives no usable stream name ('.')"),
    ("out-is-the-sources-file", ["--sources", "{root}/sources.jsonl", "--out-jsonl", "{root}/sources.jsonl"],
     "--out-jsonl {root}/sources.jsonl is also the --sources file: it would be overwritten"),
    ("out-is-the-model", ["--model", "{root}/model.jsonl", "--out-jsonl", "{root}/model.jsonl"],
     "--out-jsonl {root}/model.jsonl is also the --model file"),
    ("name-with-a-path", ["--source", "../x={root}/clip.mp4"], "'../x' cannot be a stream name"),
    ("model-not-found", ["--model", "{root}/nope.onnx"], "model file not found: {root}/nope.onnx"),
    ("model-not-a-model", ["--model", "{root}/notmodel.onnx"], "onnxruntime cannot load {root}/notmodel.onnx"),
    ("model-truncated-checkpoint", ["--model", "{root}/truncated.pt"], "{root}/truncated.pt: truncated or corrupt checkpoint"),
    ("bad-card", ["--card", "{root}/bad.json"], "{root}/bad.json: not valid JSON"),
    ("stride-0", ["--stride", "0"], "tsi-live: error: argument --stride: must be >= 1 (got 0)"),
    ("threshold-nan", ["--threshold", "nan"], "--threshold must be in [0, 1] (got nan)"),
    ("sources-bad-line", ["--sources", "{root}/bad_line.txt"], "source 'file://': no file name after file://"),
    ("sources-not-utf8", ["--sources", "{root}/latin1.txt"], "cannot read sources file {root}/latin1.txt: 'utf-8' codec"),
    ("out-is-a-folder", ["--out-jsonl", "{root}/outdir.jsonl"], "--out-jsonl {root}/outdir.jsonl is a folder"),
    ("out-unwritable", ["--out-jsonl", "/sys/tsi_edge_doors/e.jsonl"], "--out-jsonl /sys/tsi_edge_doors/e.jsonl: "),
]


def _out(root, case: str):
    return root / f"out-{case}"


def _argv(root, case: str, args: list[str]) -> list[str]:
    """The base run (the shipped demo model, the clip, headless, an output of its own so no warning
    is logged), then the case's arguments (the last of a repeated flag wins)."""
    base = ["-m", "runtime.live", "--headless", "--model", str(DEMO_ONNX), "--out-jsonl", f"{_out(root, case)}/e.jsonl"]
    if not any(a in ("--source", "--sources") for a in args):
        base += ["--source", f"{root}/clip.mp4"]
    return base + [a.format(root=root, out=_out(root, case)) for a in args]


@pytest.fixture(scope="module")
def results(files):
    """Every case's run, two at a time (the machine these run on has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda c: run_measured(_argv(files, c[0], c[1]), timeout=60), CASES)
        return dict(zip((c[0] for c in CASES), runs))


@pytest.mark.parametrize("case, args, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(files, results, case, args, words):
    r = results[case]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (case, r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(lines) == 1 and (" ERROR runtime.live: " in lines[0] or lines[0].startswith("tsi-live: error:")), lines[-5:]
    assert words.format(root=files, out=_out(files, case)) in lines[0], lines[0]
    assert peak_mb(r) < PEAK_MB, f"{case}: peak RSS {peak_mb(r):.0f} MB"
    out = _out(files, case)
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())  # nothing written


def test_the_users_files_are_left_as_they_were(files, results):
    """The cases that name a user's file as an output refused it: it is unchanged."""
    assert (files / "sources.jsonl").read_text() == f"{files / 'clip.mp4'}\n"
    assert (files / "model.jsonl").read_bytes() == DEMO_ONNX.read_bytes()
