import json

import pytest

from runtime.events import main, match_segments, read_events

SEGMENTS = [{"label": "a", "start_frame": 0, "end_frame": 64},
            {"label": "b", "start_frame": 64, "end_frame": 128}]


def ev(label, start, end):
    return {"label": label, "score": 0.9, "start_frame": start, "end_frame": end,
            "start_s": start / 30, "end_s": end / 30}


def test_events_match_segments_they_mostly_overlap():
    # 'a' recognised late (window lag) but mostly inside its segment; 'b' only in the wrong place
    matches = match_segments([ev("a", 30, 70), ev("b", 10, 40)], SEGMENTS)
    assert matches[0][1]["start_frame"] == 30
    assert matches[1][1] is None


def test_cli_reports_hits_and_misses(tmp_path, capsys):
    jsonl = tmp_path / "actions.jsonl"
    jsonl.write_text(json.dumps(ev("a", 20, 60)) + "\n" + json.dumps({"summary": {}}) + "\n")
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"fps": 30, "segments": SEGMENTS}))
    assert main([str(jsonl), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert "1/2 segments recognised" in out and "MISSED" in out
    assert len(read_events(jsonl)) == 1


def test_bad_files_are_named(tmp_path):
    with pytest.raises(SystemExit, match="no events file"):
        main([str(tmp_path / "missing.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    with pytest.raises(SystemExit, match="bad.jsonl:1: not JSON"):
        main([str(bad)])
