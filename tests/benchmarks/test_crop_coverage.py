"""benchmarks.crop_coverage on a small sample: every crop row written for both resize modes, the TSN
multi-scale crop losing the actor more often than the test-time centre crop (the finding the hard
recipe rests on), and the square resize keeping the unseen generator's wide-frame actors in view."""

import re

from benchmarks.crop_coverage import main


def test_small_sample_writes_the_table(tmp_path):
    table = tmp_path / "cc.md"
    assert main(["--clips", "200", "--new-clips", "48", "--table", str(table)]) == 0
    rows = {(m[0], m[1]): [float(x) for x in m[2:]] for m in re.findall(
        r"^\| (\w+) \| ([^|]+?) \|" + r" ([\d.]+)% \|" * 6 + "$", table.read_text(), re.M)}
    crops = {"train, scales TSN (1 .875 .75 .66)", "train, scales 1 .875", "train, scales 1", "test, centre crop"}
    assert set(rows) == {(mode, c) for mode in ("short_side", "square") for c in crops}
    tsn, centre = rows["short_side", "train, scales TSN (1 .875 .75 .66)"], rows["short_side", "test, centre crop"]
    assert tsn[0] > centre[0] + 5 and tsn[2] > centre[2] + 5  # easy and hard, clips with the actor lost
    # the unseen generator's actors roam 4:3 and 16:9 frames: the short-side centre crop loses some
    # of them in some frames, the square one (the whole frame) far fewer
    assert rows["short_side", "test, centre crop"][5] > 2 * rows["square", "test, centre crop"][5] + 1
