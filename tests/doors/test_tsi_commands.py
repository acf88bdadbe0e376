"""Bad inputs to the PyTorch side's commands, as a careless user types them: each case is run as a
subprocess and must exit 2 with one line naming the problem (no traceback, no signal death), found
before any heavy work, within 500 MB of peak memory (the child's peak RSS)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.doors.helpers import PEAK_MB, peak_mb, run_measured

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny dataset, a tiny checkpoint, and the bad files the cases name."""
    from tests.export.helpers import make_checkpoint
    from tsi.data.synthetic import generate

    root = tmp_path_factory.mktemp("doors")
    generate(root / "data", train=1, val=1, seed=0, frames=8, size=(64, 48), progress=False)
    ckpt = make_checkpoint(root / "ok.pt")
    big = torch.load(ckpt, weights_only=True)
    big["config"]["base_width"] = 65536
    torch.save(big, root / "wide.pt")
    (root / "truncated.pt").write_bytes(ckpt.read_bytes()[:4000])
    (root / "notes.txt").write_text("not a checkpoint\n")
    (root / "empty").mkdir()
    (root / "log.csv").write_text("this,is\nnot,a log\n")
    return root


def _train(*extra: str) -> list[str]:
    return ["-m", "tsi.train", "--data", "{root}/data", "--out", "{root}/run", "--arch", "tsi_r18",
            "--frames", "4", "--input-size", "32", "--base-width", "8", "--sme-reduction", "2",
            "--workers", "0", "--device", "cpu", "--span-frames", "8", *extra]


CASES = [
    # (id, argv with {root}, first words of the error line)
    ("train-missing-data", ["-m", "tsi.train", "--data", "{root}/nope", "--out", "{root}/r1"], "tsi-train: error:"),
    ("train-empty-data", ["-m", "tsi.train", "--data", "{root}/empty", "--out", "{root}/r2"], "tsi-train: error:"),
    ("train-out-is-a-file", _train("--out", "{root}/notes.txt"), "tsi-train: error: --out {root}/notes.txt is a file"),
    ("train-eval-every-0", _train("--eval-every", "0"), "tsi-train: error: argument --eval-every: '0' is not a whole number >= 1"),
    ("train-epochs-0", _train("--epochs", "0"), "tsi-train: error: argument --epochs: '0' is not"),
    ("train-lr-nan", _train("--lr", "nan"), "tsi-train: error: argument --lr: 'nan' is not a finite number > 0"),
    ("train-batch-0", _train("--batch-size", "0"), "tsi-train: error: argument --batch-size"),
    ("train-workers-negative", _train("--workers", "-1"), "tsi-train: error: argument --workers"),
    ("train-crop-scales", _train("--crop-scales", "0", "2"), "tsi-train: error: argument --crop-scales: '0' is not a number in (0, 1]"),
    ("train-mix-background-1", _train("--mix-background", "1"), "tsi-train: error: argument --mix-background: '1' is not a number in [0, 1)"),
    ("train-frames-1", _train("--frames", "1", "--span-frames", "0"), "tsi-train: error: --arch tsi_r18 with these options: invalid TSIConfig: frames must be 2"),
    ("train-input-size-30", _train("--input-size", "30"), "tsi-train: error: --arch tsi_r18 with these options: invalid TSIConfig: input_size must be a multiple of 16"),
    ("train-width-without-reduction", ["-m", "tsi.train", "--data", "{root}/data", "--out", "{root}/r3", "--arch", "tsi_r18",
                                       "--base-width", "8", "--device", "cpu"], "tsi-train: error: --arch tsi_r18 with these options: invalid TSIConfig: sme_reduction=16 leaves no channels"),
    ("train-finetune-not-a-checkpoint", _train("--finetune", "{root}/notes.txt"), "tsi-train: error: {root}/notes.txt: not a PyTorch checkpoint"),
    ("evaluate-out-is-a-file", ["-m", "tsi.evaluate", "--checkpoint", "{root}/ok.pt", "--data", "{root}/data", "--out", "{root}/notes.txt"], "tsi-evaluate: error: --out {root}/notes.txt is a file"),
    ("evaluate-truncated", ["-m", "tsi.evaluate", "--checkpoint", "{root}/truncated.pt", "--data", "{root}/data"], "tsi-evaluate: error: {root}/truncated.pt: truncated or corrupt checkpoint"),
    ("evaluate-oversized-config", ["-m", "tsi.evaluate", "--checkpoint", "{root}/wide.pt", "--data", "{root}/data"], "tsi-evaluate: error: {root}/wide.pt: bad config in checkpoint: invalid TSIConfig: base_width must be 1 to 256 (got 65536)"),
    ("build-oversized-config", ["export/build_engine.py", "--checkpoint", "{root}/wide.pt", "--out", "{root}/b"], "error: {root}/wide.pt: bad config in checkpoint"),
    ("info-huge-frames", ["-m", "tsi.info", "--frames", "100000"], "tsi-info: error: --frames/--size/--num-classes: invalid TSIConfig: frames must be 2 to 64"),
    ("plots-bad-log", ["-m", "tsi.plots", "{root}/log.csv", "--out", "{root}/c.png"], "tsi-plots: error:"),
    ("plots-out-is-a-folder", ["-m", "tsi.plots", "{root}/log.csv", "--out", "{root}/empty"], "tsi-plots: error: --out {root}/empty is a folder"),
    ("block-stats-missing", ["-m", "tsi.block_stats", "{root}/none.jsonl", "--out", "{root}/c.png"], "tsi-block-stats: error: {root}/none.jsonl: no such file"),
    ("block-stats-not-stats", ["-m", "tsi.block_stats", "{root}/log.csv", "--out", "{root}/c.png"], "tsi-block-stats: error: {root}/log.csv:1: not a JSON line"),
    ("train-find-lr-zero-steps", ["-m", "tsi.train", "--data", "{root}/data", "--out", "{root}/r", "--find-lr", "--find-lr-steps", "0"], "tsi-train: error: argument --find-lr-steps"),
    ("synthetic-no-train", ["-m", "tsi.data.synthetic", "--out", "{root}/s", "--train", "0"], "tsi-synthetic: error: argument --train"),
    ("motion-corpus-foreign-folder", ["-m", "tsi.data.motion_corpus", "--out", "{root}/data", "--train", "1", "--val", "0"], "tsi-motion-corpus: error: {root}/data is not empty and holds no motion_corpus.json"),
    ("motion-corpus-negative", ["-m", "tsi.data.motion_corpus", "--out", "{root}/c", "--val", "-1"], "tsi-motion-corpus: error: argument --val"),
]


@pytest.fixture(scope="module")
def results(files):
    """Every case's run, as many at once as there are CPUs (each child mostly imports torch)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        # each case its own run folder: the cases run at once, and a run folder is locked by its run
        runs = pool.map(run_measured, ([a.replace("{root}/run", f"{{root}}/run-{case}").format(root=files) for a in argv]
                               for case, argv, _ in CASES))
        return dict(zip((c[0] for c in CASES), runs))


@pytest.mark.parametrize("case, argv, first", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(files, results, case, argv, first):
    r = results[case]
    err = r.stderr.strip().splitlines()
    errors = [line for line in err if "error:" in line and " ERROR " not in line]  # not the stage log
    assert r.returncode == 2, (case, r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(errors) == 1 and first.format(root=files) in errors[0], err[-5:]
    assert peak_mb(r) < PEAK_MB, f"{case}: peak RSS {peak_mb(r):.0f} MB"
    assert not list(files.glob("run*/last.pt"))


@pytest.mark.parametrize("name, message", [("truncated.pt", "truncated or corrupt checkpoint"),
                                           ("wide.pt", "base_width must be 1 to 256 (got 65536)")])
def test_live_with_a_bad_checkpoint_is_one_line(files, name, message):
    """``tsi-live --model x.pt`` (the development backend): the checkpoint's error in one line."""
    from tests.data.videos import write_video

    clip = write_video(files / "clip.mp4", 20)
    r = run_measured(["-m", "runtime.live", "--model", str(files / name), "--source", str(clip), "--headless"])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and message in errors[0], r.stderr[-1000:]
    assert peak_mb(r) < PEAK_MB
