"""benchmarks.online on a small run: MACs, interleaved latencies and the live runtime on a 30 fps
file, for both the step graph (online) and the clip graph (sliding window)."""

from benchmarks.online import run


def test_small_run_writes_every_section(tmp_path):
    out = tmp_path / "online.md"
    r = run(["--macs-only-model", "", "--repeats", "2", "--large-repeats", "0", "--seconds", "1.5",
             "--out", str(out)])
    (macs,) = r["macs"]
    (clip_conv, clip_attn), (step_conv, step_attn) = macs["clip"], macs["step"]
    # one step is one frame of the T=8 clip model, give or take the causal ops' edges (within 1%)
    assert 7.9 < (clip_conv + clip_attn) / (step_conv + step_attn) <= 8.0
    (lat,) = r["latency"]
    assert lat["runs"] == 2 and round(lat["state_kib"], 1) == 187.5  # the demo geometry, docs/online.md
    fps = r["fps"]
    for kind in ("online", "window"):
        every, realtime = fps[kind]["every_frame"], fps[kind]["realtime"]
        assert every["frames"] == realtime["read"] == 45 and every["fps"] > 0
    assert fps["online"]["every_frame"]["inferences"] == 45  # stride 1: a step per frame
    assert fps["window"]["every_frame"]["inferences"] == 45 - 32 + 1  # a clip per frame once the span is full
    text = out.read_text()
    for heading in ("## MACs per output", "## onnxruntime CPU latency per output", "## The runtime on a 30 fps file"):
        assert heading in text
