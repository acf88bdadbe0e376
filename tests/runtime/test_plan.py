"""runtime.plan.check_options: the mistakes a run plan refuses before anything loads, each a
one-line UsageError naming the flag or file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runtime.outputs import OutputPathError
from runtime.plan import LiveOptions, UsageError, check_options
from tests.runtime.helpers import write_video

LATIN1 = b"caf\xe9"  # a name from a Latin-1 system: not valid UTF-8


def _refused(opts: LiveOptions, *words: str) -> str:
    with pytest.raises((UsageError, OutputPathError)) as info:
        check_options(opts)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


def _latin1_file(folder, suffix: str) -> str:
    raw = os.path.join(os.fsencode(folder), LATIN1 + suffix.encode())
    with open(raw, "wb") as f:
        f.write(b"not really a video")
    return os.fsdecode(raw)


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (an OpenCV crash must not take the test run with it)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_a_source_name_that_is_not_utf8_is_refused_not_a_crash(tmp_path):
    source = _latin1_file(tmp_path, ".mp4")
    code = ("import sys; from runtime.plan import LiveOptions, UsageError, check_options\n"
            "try:\n    check_options(LiveOptions(sources=(sys.argv[1],)))\n"
            "except UsageError as e:\n    print(e)\n")
    r = _child(code, source)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert "caf\\xe9.mp4" in r.stdout and "not valid UTF-8" in r.stdout


def test_open_capture_refuses_a_name_that_is_not_utf8(tmp_path):
    source = _latin1_file(tmp_path, ".mp4")
    code = ("import sys; from runtime.common.video import VideoDecodeError\n"
            "from runtime.sources import open_capture, parse_source\n"
            "for s in (sys.argv[1], 'rtsp://' + sys.argv[1]):\n"
            "    try:\n        open_capture(parse_source(s))\n"
            "    except VideoDecodeError as e:\n        print(e)\n")
    r = _child(code, source)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert r.stdout.count("not valid UTF-8") == 2


@pytest.mark.parametrize("flag, suffix", [("out_video", ".mp4"), ("out_jsonl", ".jsonl")])
def test_an_output_name_that_is_not_utf8_is_refused(tmp_path, flag, suffix):
    video = write_video(tmp_path / "v.mp4", ["red"] * 3)
    out = os.fsdecode(os.path.join(os.fsencode(tmp_path), LATIN1 + suffix.encode()))
    _refused(LiveOptions(sources=(str(video),), **{flag: out}), "--" + flag.replace("_", "-"),
             "caf\\xe9", "not valid UTF-8")


@pytest.mark.parametrize("file_name", ["..mp4", "...mp4", "....mp4"])
def test_a_default_name_is_never_dot_or_dotdot(tmp_path, file_name):
    video = write_video(tmp_path / file_name, ["red"] * 3)
    (plan,) = check_options(LiveOptions(sources=(str(video),)))
    assert plan.name == "stream0"
    _refused(LiveOptions(sources=(str(video),), out_jsonl=str(tmp_path / "out" / "{name}" / "e.jsonl")),
             "--out-jsonl", "no usable stream name", f"stream0={video}")


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "a\\b"])
def test_a_stream_name_with_a_path_in_it_is_refused(tmp_path, name):
    video = write_video(tmp_path / "v.mp4", ["red"] * 3)
    _refused(LiveOptions(sources=(f"{name}={video}",)), repr(name), "cannot be a stream name")


def test_an_output_template_never_resolves_outside_its_folder(tmp_path):
    from runtime.plan import _expand

    template = str(tmp_path / "out" / "{name}" / "e.jsonl")
    assert _expand(template, "cam", 0, True, "--out-jsonl") == tmp_path / "out" / "cam" / "e.jsonl"
    for name in ("..", "../..", "a/../../b"):
        with pytest.raises(UsageError, match="outside"):
            _expand(template, name, 0, True, "--out-jsonl")
    with pytest.raises(UsageError, match="outside"):
        _expand("{name}.jsonl", "../up", 0, True, "--out-jsonl")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "cam").mkdir(parents=True)
    (tmp_path / "out" / "cam" / "e.jsonl").symlink_to(tmp_path / "elsewhere" / "e.jsonl")
    assert _expand(template, "cam", 0, True, "--out-jsonl") == tmp_path / "out" / "cam" / "e.jsonl"  # the user's link


@pytest.mark.parametrize("flag", ["sources_file", "model", "card"])
def test_an_output_that_is_an_input_is_refused(tmp_path, flag):
    video = write_video(tmp_path / "v.mp4", ["red"] * 3)
    given = tmp_path / "inputs.jsonl"  # the user's file, whatever it is called
    given.write_text(f"{video}\n")
    opts = LiveOptions(sources=() if flag == "sources_file" else (str(video),), out_jsonl=str(given),
                       **{flag: str(given)})
    _refused(opts, "--out-jsonl", f"is also the --{flag.split('_')[0]} file", "overwritten")
    assert given.read_text() == f"{video}\n"


def test_an_output_that_is_a_link_to_a_source_is_refused(tmp_path):
    video = write_video(tmp_path / "v.mp4", ["red"] * 3)
    os.link(video, tmp_path / "link.mp4")
    _refused(LiveOptions(sources=(str(video),), out_video=str(tmp_path / "link.mp4")),
             "--out-video", "is also the source", "overwritten")


def test_every_missing_source_is_named_in_one_line(tmp_path):
    from runtime.plan import MAX_LISTED

    video = write_video(tmp_path / "v.mp4", ["red"] * 3)
    names = [f"m{k}.mp4" for k in range(MAX_LISTED + 2)]
    two = _refused(LiveOptions(sources=(str(tmp_path / "a.mp4"), str(video), f"b={tmp_path / 'b.mp4'}")),
                   "video files not found:")
    assert two.endswith(f"{tmp_path / 'a.mp4'}, {tmp_path / 'b.mp4'}")
    many = _refused(LiveOptions(sources=tuple(str(tmp_path / n) for n in names)), "video files not found")
    assert all(n in many for n in names[:MAX_LISTED]) and many.endswith(" and 2 more")
    _refused(LiveOptions(sources=(str(tmp_path / "a.mp4"),)), f"video file not found: {tmp_path / 'a.mp4'}")
