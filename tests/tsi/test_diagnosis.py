"""Training diagnosis: the learning-rate range test, per-block statistics and the fit verdict."""

import json
import math

import pytest

from tsi import block_stats, find_lr
from tsi import train as tsi_train
from tsi.cli import UsageError
from tsi.data.synthetic import generate


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate(out, train=2, val=1, seed=0, frames=8, size=(64, 48), progress=False)
    return out


def args(data, out, *extra):
    return ["--data", str(data), "--out", str(out), "--arch", "tsi_r18", "--frames", "4",
            "--input-size", "32", "--base-width", "8", "--sme-reduction", "2", "--batch-size", "4",
            "--epochs", "2", "--lr-steps", "1", "--workers", "0", "--span-frames", "8", "--device", "cpu",
            *extra]


def feed(test, losses):
    for i, loss in enumerate(losses):
        test.add(i, loss)


def test_range_test_suggests_the_steepest_descent_before_the_minimum():
    test = find_lr.RangeTest(steps=60, start=1e-4, end=1.0)
    # loss flat, then falling fastest around step 30, lowest at 45, then rising
    losses = [2.5 - 1.5 / (1 + math.exp(-(i - 30) / 3)) + (0.2 * (i - 45) ** 2 if i > 45 else 0) for i in range(60)]
    feed(test, losses)
    steep, tenth = test.suggestion()
    assert test.lr(25) < steep < test.lr(40)
    lowest = min(range(60), key=lambda i: test.points[i].smoothed)
    assert tenth == pytest.approx(test.lr(lowest) / 10)
    assert test.diverged  # the rise ends the test


def test_a_flat_loss_is_a_plateau_and_gets_no_suggestion(tmp_path):
    test = find_lr.RangeTest(steps=40)
    feed(test, [2.485 + 0.005 * math.sin(i) for i in range(40)])
    assert test.suggestion() is None and not test.diverged
    csv_path, png = test.write(tmp_path, "flat")
    assert csv_path.read_text().splitlines()[0] == "step,lr,loss,smoothed"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_non_finite_loss_ends_the_test():
    test = find_lr.RangeTest(steps=40)
    feed(test, [2.0] * 6 + [float("nan")])
    assert test.diverged


def test_find_lr_writes_its_curve_and_no_checkpoint(data, tmp_path):
    out = tmp_path / "flr"
    result = tsi_train.run(args(data, out, "--find-lr", "--find-lr-steps", "12"))
    rows = (out / find_lr.CSV_NAME).read_text().splitlines()
    assert len(rows) == 13 and len(result["find_lr"]) == 12  # the 22 clips cycled through
    lrs = [p["lr"] for p in result["find_lr"]]
    assert lrs[0] == pytest.approx(find_lr.START) and lrs == sorted(lrs)
    assert (out / find_lr.PNG_NAME).exists() and not (out / "last.pt").exists()
    with pytest.raises(UsageError, match="--resume"):
        tsi_train.run(args(data, out, "--find-lr", "--resume"))
    tsi_train.run(args(data, out, "--max-steps", "1", "--epochs", "1"))  # the folder still takes a run


def test_block_stats_record_every_block_for_the_first_epochs(data, tmp_path):
    out = tmp_path / "run"
    tsi_train.run(args(data, out, "--block-stats", "1", "--block-stats-every", "2", "--no-zero-init",
                        "--epochs", "2", "--max-steps", "5"))
    rows = [json.loads(line) for line in (out / block_stats.FILE).read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4]  # 22 clips / batch 4 = 5 steps, epoch 1 only
    assert {r["epoch"] for r in rows} == {1}
    r = rows[0]
    assert {"stem", "fc", "stages.0.0.head", "stages.0.0.unit", "stages.3.1.tail"} <= set(r["parts"])
    assert all(p["g"] > 0 for p in r["parts"].values())
    blk = r["blocks"]["stages.1.0"]
    assert blk["branch"] > 0 and blk["gamma"] == pytest.approx(1.0, abs=0.05) and blk["unit"] > 0
    png = block_stats.plot_stats(out / block_stats.FILE, tmp_path / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_block_stats_of_an_epoch_a_stop_dropped_are_not_kept_twice(data, tmp_path):
    out = tmp_path / "run"
    base = ("--block-stats", "2", "--block-stats-every", "2", "--max-steps", "3")
    tsi_train.run(args(data, out, *base, "--epochs", "1"))
    with open(out / block_stats.FILE, "a", encoding="utf-8") as f:  # what a stop in epoch 2 leaves
        f.write(json.dumps({"epoch": 2, "step": 0, "loss": 9.0, "parts": {}, "blocks": {}}) + "\n")
        f.write('{"epoch": 2, "step": 2, "lo')  # and a line a kill cut
    tsi_train.run(args(data, out, *base, "--epochs", "2", "--resume"))
    rows = [json.loads(line) for line in (out / block_stats.FILE).read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 0), (1, 2), (2, 0), (2, 2)]
    assert rows[2]["loss"] != 9.0


def test_zero_init_shows_as_closed_branches(data, tmp_path):
    out = tmp_path / "run"
    tsi_train.run(args(data, out, "--block-stats", "1", "--max-steps", "1", "--epochs", "1"))
    blk = json.loads((out / block_stats.FILE).read_text().splitlines()[0])["blocks"]["stages.0.1"]
    assert blk["branch"] == 0.0 and blk["gamma"] == 0.0


def test_reading_a_file_that_is_not_block_stats_is_one_error(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(block_stats.StatsFormatError, match="x.jsonl:1"):
        block_stats.read_stats(bad)
    assert block_stats.main([str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.png")]) == 2


@pytest.mark.parametrize("train,val,word", [(20.0, 10.0, "stalled"), (95.0, 30.0, "overfitting"),
                                            (95.0, 80.0, ""), (60.0, None, "")])
def test_fit_verdict(train, val, word):
    row = {"epoch": 20, "train_top1": train, **({"val_top1": val} if val is not None else {})}
    verdict = tsi_train.fit_verdict([row], 480)
    assert (word in verdict) if word else verdict == ""


# -- --init ------------------------------------------------------------------------------------
@pytest.fixture
def shipped(data, tmp_path_factory, monkeypatch):
    """A tiny tsi_r18 run's checkpoint standing in for the shipped motion initialisation."""
    from tsi import init as tsi_init

    out = tmp_path_factory.mktemp("shipped")
    tsi_train.run(args(data, out, "--max-steps", "1", "--epochs", "1", "--init", "scratch"))
    monkeypatch.setitem(tsi_init.MOTION_INITS, "tsi_r18", out / "last.pt")
    for arch in ("tsm_r18", "tsn_r18"):
        monkeypatch.setitem(tsi_init.MOTION_INITS, arch, out / "absent.pt")
    return out / "last.pt"


@pytest.mark.parametrize("arch", ["tsi_r18", "tsm_r18", "tsn_r18"])
def test_each_shipped_initialisation_is_its_arch_at_the_demo_geometry(arch):
    from benchmarks.common.demo_geometry import demo_config
    from tsi import init as tsi_init
    from tsi.model import create_model

    demo = demo_config()
    cfg = create_model(arch, frames=demo.frames, num_classes=11, input_size=demo.input_size,
                       base_width=demo.base_width, sme_reduction=demo.sme_reduction).cfg
    path, ckpt, why = tsi_init.resolve("auto", arch, cfg, other_init=False)
    assert path == tsi_init.MOTION_INITS[arch] and ckpt["card"]["arch"] == arch, why
    assert tsi_init.mismatch(cfg, ckpt["config"]) == []


def test_init_auto_starts_from_the_shipped_initialisation_of_the_same_geometry(data, tmp_path, shipped, caplog):
    import torch

    from tsi.checkpoint import load_checkpoint

    caplog.set_level("INFO", "tsi.train")
    tsi_train.run(args(data, tmp_path / "a", "--max-steps", "1", "--epochs", "1", "--lr", "1e-12"))
    assert "from the shipped motion initialisation last.pt" in caplog.text
    a, src = load_checkpoint(tmp_path / "a" / "last.pt")["model"], load_checkpoint(shipped)["model"]
    w = "backbone.stages.2.0.head.0.weight"
    assert torch.allclose(a[w], src[w], atol=1e-6)  # a rate of 1e-12 leaves the copied weights
    caplog.clear()
    tsi_train.run(args(data, tmp_path / "b", "--max-steps", "1", "--epochs", "1", "--base-width", "16"))
    assert "from scratch (the shipped tsi_r18 initialisation has another geometry: base_width 16 vs 8)" in caplog.text
    with pytest.raises(UsageError, match="another geometry"):
        tsi_train.run(args(data, tmp_path / "c", "--epochs", "1", "--base-width", "16", "--init", "motion"))
    with pytest.raises(UsageError, match="no shipped motion initialisation for tsn_r18 .there is one for: tsi_r18"):
        tsi_train.run(args(data, tmp_path / "d", "--epochs", "1", "--arch", "tsn_r18", "--init", "motion"))
    with pytest.raises(UsageError, match="give one"):
        tsi_train.run(args(data, tmp_path / "e", "--epochs", "1", "--init", "motion", "--finetune", str(shipped)))
    with pytest.raises(UsageError, match="--init initialises a new model"):
        tsi_train.run(args(data, tmp_path / "a", "--epochs", "2", "--resume", "--init", "scratch"))
