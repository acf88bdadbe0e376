"""benchmarks.online_sequences on two tiny random runs (one causal, one offline): each exported as
the live runtime runs it and run over a continuous video of the 11 synthetic actions."""

import json

import pytest

from benchmarks.online_sequences import run


def test_causal_and_offline_runs_through_the_live_runtime(tmp_path):
    from tests.export.helpers import make_causal_checkpoint, make_checkpoint

    runs = tmp_path / "runs"
    (runs / "tiny-causal").mkdir(parents=True)
    (runs / "tiny").mkdir()
    make_causal_checkpoint(runs / "tiny-causal" / "last.pt")
    make_checkpoint(runs / "tiny" / "last.pt")
    out = tmp_path / "seq.md"
    rows = run(["--runs", str(runs), "--archs", "tiny-causal", "tiny", "--sequences", "1", "--frames", "8",
                "--out", str(out)])
    online, window = rows
    assert online["mode"] == "online" and window["mode"] == "clip"
    assert online["segments"] == window["segments"] == 11  # every synthetic action once
    # 88 frames: the online model steps every frame step (4): 22; the window (span 16) every 4 once full: 19
    assert online["inferences_per_video"] == 22 and window["inferences_per_video"] == 19
    assert json.loads(out.with_suffix(".json").read_text()) == rows
    assert "| tiny-causal | online (step graph) |" in out.read_text()
    with pytest.raises(SystemExit, match="no last.pt for \\['nope'\\]"):
        run(["--runs", str(runs), "--archs", "nope", "--out", str(tmp_path / "x.md")])
