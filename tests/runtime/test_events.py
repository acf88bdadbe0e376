import json

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


def test_bad_files_are_one_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: no events file")
    assert main([str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps(ev("a", 1, 2)) + "\n")
    truth = tmp_path / "t.json"
    truth.write_text("[1, 2]")
    assert main([str(good), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert "segments" in err and len(err.strip().splitlines()) == 1


def test_bad_lines_are_skipped_and_counted(tmp_path, capsys):
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text("\n".join([
        json.dumps(ev("a", 20, 60)),
        "[1, 2, 3]",                                   # JSON, not an object
        "{nope",                                       # not JSON
        json.dumps({"label": "b", "score": "high"}),   # an event without its fields
        json.dumps({"gap": {"reason": "dropped"}}),    # a gap: not an event, not bad
        json.dumps(ev("b", 70, 90)),
        '{"label": "c", "sco',                         # a run killed mid-line
    ]) + "\n")
    skipped = []
    events = read_events(jsonl, skipped)
    assert [e["label"] for e in events] == ["a", "b"]
    assert len(skipped) == 4 and skipped[0].endswith(":2: a JSON list, not an object")
    assert main([str(jsonl)]) == 0
    out = capsys.readouterr().out
    assert "skipped 4 bad line(s)" in out and "recognised 2 action(s)" in out
