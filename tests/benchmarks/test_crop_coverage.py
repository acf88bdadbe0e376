"""benchmarks.crop_coverage on a small sample: every crop row written, and the TSN multi-scale crop
losing the actor more often than the test-time centre crop (the finding the hard recipe rests on)."""

import re

from benchmarks.crop_coverage import main


def test_small_sample_writes_the_table(tmp_path):
    table = tmp_path / "cc.md"
    assert main(["--clips", "200", "--table", str(table)]) == 0
    rows = {m[0]: [float(x) for x in m[1:]] for m in re.findall(
        r"^\| ([^|]+?) \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+)% \|$", table.read_text(), re.M)}
    assert set(rows) == {"train, scales TSN (1 .875 .75 .66)", "train, scales 1 .875", "train, scales 1",
                         "test, centre crop"}
    tsn, centre = rows["train, scales TSN (1 .875 .75 .66)"], rows["test, centre crop"]
    assert tsn[0] > centre[0] + 5 and tsn[2] > centre[2] + 5  # easy and hard, clips with the actor lost
