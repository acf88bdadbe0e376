"""Training and evaluation on a tiny synthetic dataset: exact resume, torchrun (gloo), eval outputs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tsi import evaluate as tsi_evaluate
from tsi import train as tsi_train
from tsi.checkpoint import load_checkpoint, load_model
from tsi.cli import UsageError
from tsi.data.synthetic import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate(out, train=2, val=1, seed=0, frames=8, size=(64, 48), progress=False)
    return out


def train_args(data, out, epochs, *extra):
    return ["--data", str(data), "--out", str(out), "--arch", "tsi_r18", "--frames", "4",
            "--input-size", "32", "--base-width", "8", "--sme-reduction", "2",
            "--batch-size", "4", "--epochs", str(epochs), "--lr-steps", "1", "--workers", "0",
            "--span-frames", "8", "--device", "cpu", *extra]


def test_resumed_run_equals_uninterrupted_run(data, tmp_path):
    straight = tsi_train.run(train_args(data, tmp_path / "a", 2))
    tsi_train.run(train_args(data, tmp_path / "b", 1))
    resumed = tsi_train.run(train_args(data, tmp_path / "b", 2, "--resume"))
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert straight["history"][-1]["train_loss"] == resumed["history"][-1]["train_loss"]
    rows = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "b" / "log.csv").read_text().startswith("epoch,")  # sorted keys, epoch first
    # the card the runtime will read travels in the checkpoint
    _, card = load_model(tmp_path / "b" / "last.pt")
    assert card.frames == 4 and card.span_frames == 8 and len(card.labels) == 11


def test_refuses_to_overwrite_a_run_and_to_resume_nothing(data, tmp_path):
    tsi_train.run(train_args(data, tmp_path / "r", 1, "--max-steps", "1"))
    with pytest.raises(UsageError, match="exists"):
        tsi_train.run(train_args(data, tmp_path / "r", 1))
    with pytest.raises(UsageError, match="no checkpoint"):
        tsi_train.run(train_args(data, tmp_path / "none", 1, "--resume"))


def test_two_process_torchrun_trains_a_step(data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", "29517", "-m", "tsi.train",
           *train_args(data, tmp_path / "ddp", 1, "--max-steps", "1", "--batch-size", "2")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpts = sorted(p.name for p in (tmp_path / "ddp").glob("*.pt"))
    assert "last.pt" in ckpts
    model, card = load_model(tmp_path / "ddp" / "last.pt")
    assert card.num_classes == 11


def test_evaluate_writes_metrics_and_confusion_matrix(data, tmp_path):
    tsi_train.run(train_args(data, tmp_path / "e", 1, "--max-steps", "1"))
    for views in (1, 30):
        res = tsi_evaluate.evaluate(str(tmp_path / "e" / "last.pt"), str(data), views=views,
                                    workers=0, out=str(tmp_path / "eval"))
        assert res["clips"] == 11 and 0 <= res["top1"] <= res["top5"] <= 100
        assert set(res["per_class"]) == set(load_model(tmp_path / "e" / "last.pt")[1].labels)
    png = tmp_path / "eval" / "confusion_val_30view.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "eval" / "eval_val_1view.json").read_text())["views"] == 1


def test_causal_flag_trains_a_causal_model(data, tmp_path):
    tsi_train.run(train_args(data, tmp_path / "c", 1, "--max-steps", "1", "--causal"))
    model, card = load_model(tmp_path / "c" / "last.pt")
    assert model.cfg.causal is True and card.config["causal"] is True


def test_warm_state_trains_a_causal_model_and_needs_one(data, tmp_path):
    with pytest.raises(UsageError, match="--warm-state .*add --causal"):
        tsi_train.run(train_args(data, tmp_path / "w0", 1, "--max-steps", "1", "--warm-state"))
    tsi_train.run(train_args(data, tmp_path / "w", 1, "--max-steps", "1", "--causal", "--warm-state"))
    ckpt = load_checkpoint(tmp_path / "w" / "last.pt")
    assert ckpt["config"]["causal"] is True and ckpt["args"]["warm_state"] is True
    tsi_train.run(train_args(data, tmp_path / "w", 2, "--max-steps", "1", "--causal", "--resume"))
    assert load_checkpoint(tmp_path / "w" / "last.pt")["args"]["warm_state"] is True  # carried


def test_warmup_and_crop_scales(data, tmp_path):
    assert tsi_train.warmup_fn(2, 10, 0.1, 1.0) is None
    f = tsi_train.warmup_fn(0, 10, 0.1, 1.5)
    assert [round(f(s), 4) for s in (0, 9)] == [round(0.1 / 15, 4), round(0.1 * 10 / 15, 4)]
    assert tsi_train.warmup_fn(1, 10, 0.1, 1.5)(9) == 0.1
    res = tsi_train.run(train_args(data, tmp_path / "w", 1, "--warmup-epochs", "2",
                                    "--crop-scales", "1", "0.875", "--optimizer", "adamw"))
    ckpt = load_checkpoint(tmp_path / "w" / "last.pt")
    assert ckpt["args"]["crop_scales"] == [1.0, 0.875]
    # 22 clips / batch 4 = 5 steps of a 10-step warm-up: the last step ran at half the lr
    assert res["history"][0]["lr"] == pytest.approx(0.01 * 4 / 64 * 5 / 10)


@pytest.mark.parametrize("sig, to_group", [("SIGTERM", False), ("SIGINT", True)])
def test_a_stop_signal_ends_training_cleanly_and_resume_goes_on(data, tmp_path, sig, to_group):
    """SIGTERM to the trainer (systemd, docker stop) or Ctrl-C to its whole process group (the
    DataLoader worker too): the epoch in progress is dropped, the last finished one stays saved,
    the exit code is 128 + the signal, and --resume carries on."""
    import signal
    import time

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = train_args(data, out, 1000, "--workers", "1")
    proc = subprocess.Popen([sys.executable, "-m", "tsi.train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = out / "log.jsonl"
    deadline = time.monotonic() + 240
    while not (log.exists() and log.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.2)
    signum = getattr(signal, sig)
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    assert f"stopped by {sig} during epoch" in err and "--resume continues" in err
    epochs = [json.loads(x)["epoch"] for x in log.read_text().splitlines()]
    assert load_checkpoint(out / "last.pt")["epoch"] == epochs[-1] - 1  # the last finished epoch (0-based)
    # nothing half-written is left (best.pt only after an improving validation)
    assert {"last.pt", "log.csv", "log.jsonl", "data_report.json"} <= {p.name for p in out.iterdir()} <= {
        "best.pt", "last.pt", "log.csv", "log.jsonl", "data_report.json"}
    resumed = tsi_train.run(train_args(data, out, epochs[-1] + 1, "--resume"))
    assert [r["epoch"] for r in resumed["history"]] == [epochs[-1] + 1] and "stopped" not in resumed


def test_redirected_output_has_no_progress_bar_and_one_line_per_epoch(data, tmp_path):
    """stderr to a file (``tsi-train ... 2> train.log``): no tqdm redraws (carriage returns), one log
    line per epoch."""
    log_file = tmp_path / "train.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log_file, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "tsi.train", *train_args(data, tmp_path / "run", 3)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=300)
    text = log_file.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "\r" not in text and "it/s" not in text, text[-3000:]
    epochs = re.findall(r": epoch (\d+): epoch=", text)
    assert epochs == ["1", "2", "3"], text[-3000:]


def test_resume_takes_the_recipe_from_the_checkpoint_and_removes_stale_temporaries(data, tmp_path, caplog):
    """``--resume`` alone continues with the batch size the run had (it scaled the learning rate by
    the command line's default before), says so, and removes what a killed checkpoint write left."""
    import logging

    out = tmp_path / "r"
    tsi_train.run(train_args(data, out, 1, "--max-steps", "1", "--batch-size", "2"))
    stale = [out / ".last.k1ll3d00.tmp", out / ".best.k1ll3d00.tmp", out / ".log.k1ll3d00.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    args = [a for a in train_args(data, out, 2, "--max-steps", "1", "--resume")]
    i = args.index("--batch-size")
    del args[i : i + 2]  # not given again: the checkpoint's 2, not the default 8
    with caplog.at_level(logging.INFO, logger="tsi.train"):
        tsi_train.run(args)
    assert not any(p.exists() for p in stale)
    assert load_checkpoint(out / "last.pt")["args"]["batch_size"] == 2
    assert "from its saved options: " in caplog.text and "--batch-size 2" in caplog.text
    assert "from the command line: the data options, --epochs 2 (was 1)" in caplog.text
    with pytest.raises(UsageError, match=r"--input-size 64 differs from the resumed run's 32"):
        tsi_train.run(train_args(data, out, 3, "--resume", "--input-size", "64"))


def test_a_class_without_a_decodable_validation_video_is_reported(data, tmp_path, caplog):
    import shutil

    from tests.data.videos import write_corrupt

    root = tmp_path / "d"
    shutil.copytree(data, root)
    (bad,) = sorted((root / "val" / "recede").iterdir())
    write_corrupt(bad)
    res = tsi_train.run(train_args(root, tmp_path / "o", 1, "--max-steps", "1"))
    assert res["history"][-1]["val_replaced_clips"] == 1
    report = json.loads((tmp_path / "o" / "data_report.json").read_text())
    assert report["val"]["classes_without_a_decodable_video"] == ["recede"]
    assert report["val"]["replaced_clips"] == {"recede": 1} and report["val"]["undecodable"] == [str(bad)]
    assert "class 'recede' has no decodable video" in caplog.text


def test_resize_square_goes_into_the_card_and_a_resumed_run_keeps_it(data, tmp_path):
    out = tmp_path / "sq"
    tsi_train.run(train_args(data, out, 1, "--max-steps", "1", "--resize", "square"))
    assert load_checkpoint(out / "last.pt")["card"]["resize"] == "square"
    with pytest.raises(UsageError, match=r"--resize short_side differs from the resumed run's square"):
        tsi_train.run(train_args(data, out, 2, "--resume", "--resize", "short_side"))
