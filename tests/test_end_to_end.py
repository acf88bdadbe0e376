"""The whole path on the shipped demo model: checkpoint -> ONNX -> live runtime (onnxruntime, CPU) on a
video the synthetic generator writes, with known labels per segment."""

from pathlib import Path

import pytest

from runtime.events import match_segments, read_events

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tsi" / "assets" / "demo_tsi_r18.pt"
SEQUENCE = ["move_right", "approach", "rotate_ccw", "disappear"]


@pytest.fixture(scope="module")
def demo_onnx(tmp_path_factory):
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from runtime.card import file_sha256

    model, card = export_friendly_model(DEMO)
    return export_onnx(model, card, tmp_path_factory.mktemp("demo") / "demo.onnx",
                       source_sha256=file_sha256(DEMO))


def test_runtime_recognises_every_segment_of_a_synthetic_video(demo_onnx, tmp_path):
    from runtime.live import main
    from tsi.data.synthetic import write_sequence_video

    video = tmp_path / "sequence.mp4"
    segments = write_sequence_video(video, SEQUENCE, seed=123, frames_per_segment=64)
    jsonl = tmp_path / "actions.jsonl"
    assert main(["--model", str(demo_onnx), "--source", str(video), "--headless", "--no-realtime",
                 "--out-jsonl", str(jsonl), "--out-video", str(tmp_path / "out.mp4")]) == 0
    events = read_events(jsonl)
    matches = match_segments(events, segments)
    missed = [seg["label"] for seg, ev in matches if ev is None]
    assert not missed, f"missed {missed}; events: {[(e['label'], e['start_frame'], e['end_frame']) for e in events]}"
    # every event lies mostly inside a segment of its own label: the JSONL matches the labels
    for e in events:
        own = [s for s in segments if s["label"] == e["label"]]
        assert own and match_segments([e], own)[0][1] is e, e
