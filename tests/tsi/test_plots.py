"""tsi.plots: training curves from tsi.train's log.csv."""

import pytest

from tsi import plots
from tsi.train import append_log


def test_curves_from_log_csv(tmp_path):
    for name, acc in (("tsn", 10.0), ("tsi", 30.0)):
        for e in range(1, 5):
            row = {"epoch": e, "lr": 1e-3, "train_loss": 2.4 - 0.1 * e, "train_top1": acc + e}
            if e % 2 == 0:
                row.update(val_loss=2.3, val_top1=acc + 2 * e)
            append_log(tmp_path / name, row)
    log = plots.read_log(tmp_path / "tsi" / "log.csv")
    assert log["epoch"] == [1, 2, 3, 4] and log["val_top1"] == [None, 34.0, None, 38.0]
    out = tmp_path / "fig" / "curves.png"
    assert plots.main([str(tmp_path / "tsn" / "log.csv"), str(tmp_path / "tsi" / "log.csv"),
                       "--labels", "TSN", "TSI", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_bad_logs(tmp_path):
    (tmp_path / "log.csv").write_text("a,b\n1,2\n")
    with pytest.raises(plots.LogFormatError, match="not a tsi.train log.csv"):
        plots.read_log(tmp_path / "log.csv")
    assert plots.main([str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x.png")]) == 2
    assert plots.main([str(tmp_path / "log.csv"), "--labels", "a", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
