"""benchmarks.synthetic_motion's tables from finished runs: causal archs, several seeds side by side."""

import json

import pytest

from benchmarks.synthetic_motion import run, split_arch


def fake_run(folder, arch, top1, conf):
    d = folder / arch
    d.mkdir(parents=True)
    res = {"top1": top1, "top5": 100.0, "clips": 4, "per_class": {"approach": top1, "recede": top1},
           "confusion": conf}
    (d / "eval_val_1view.json").write_text(json.dumps(res))
    (d / "log.jsonl").write_text("".join(json.dumps({"epoch": e, "time_s": 60.0, "train_top1": 40.0 + e}) + "\n"
                                         for e in (1, 2)))


def test_split_arch():
    assert split_arch("tsi_r18-causal") == ("tsi_r18", True)
    assert split_arch("tsm_r18") == ("tsm_r18", False)
    assert split_arch("tsi_r18-causal-warm") == ("tsi_r18", True)
    assert split_arch("tsi_r18-warm") == ("tsi_r18-warm", False)  # warm needs causal: an unknown arch


def test_seed_table_puts_runs_side_by_side_with_causal_minus_offline(tmp_path):
    for seed, (c, o) in enumerate([(80.0, 85.0), (90.0, 84.0)]):
        fake_run(tmp_path / f"seed{seed}", "tsi_r18-causal", c, [[2, 0], [0, 2]])
        fake_run(tmp_path / f"seed{seed}", "tsi_r18", o, [[1, 1], [0, 2]])
    table = tmp_path / "t.md"
    rows = run(["--table-only", "--seed-runs", str(tmp_path / "seed0"), str(tmp_path / "seed1"),
                "--archs", "tsi_r18-causal", "tsi_r18", "--table", str(table), "--title", "T"])
    assert [r["arch"] for r in rows] == ["tsi_r18-causal", "tsi_r18"]
    text = table.read_text()
    assert "| tsi_r18-causal | 80.0 | 90.0 | **85.0** | 100.0 | 100.0 | 100.0 |" in text
    assert "| tsi_r18 | 85.0 | 84.0 | **84.5** | 75.0 | 75.0 | 75.0 |" in text  # 3 of 4 pair clips told apart
    assert "| tsi_r18-causal − tsi_r18 | -5.0 | +6.0 | +0.5 |" in text
    assert json.loads(table.with_suffix(".json").read_text()) == rows


def test_seed_runs_need_table_only_and_training_needs_data(tmp_path):
    with pytest.raises(SystemExit):
        run(["--seed-runs", str(tmp_path), "--archs", "tsi_r18"])
    with pytest.raises(SystemExit):
        run(["--archs", "tsi_r18"])


def test_table_only_reads_epochs_train_time_and_last_train_top1_from_the_log(tmp_path):
    fake_run(tmp_path / "runs", "tsi_r18", 75.0, [[2, 0], [1, 1]])
    table = tmp_path / "t.md"
    rows = run(["--table-only", "--data", "unused", "--out", str(tmp_path / "runs"), "--archs", "tsi_r18",
                "--epochs", "2", "--table", str(table), "--title", "T"])
    assert rows[0]["train_top1"] == 42.0 and rows[0]["epochs"] == 2 and rows[0]["train_s"] == 120.0
    assert "| tsi_r18 | 2 of 2 | 75.0 | 100.0 | 75.0 | 75.0 | 42.0 | 2.0 min |" in table.read_text()
