"""Property-based fuzz of what tsi-live reads from a user about its sources (hypothesis): the
sources file, the NAME=SOURCE split and the source text. Any input either loads or raises the one
error type (UsageError; ValueError from parse_source, which the plan turns into one), within a time
bound (hypothesis' per-example deadline) and a memory bound (tracemalloc's peak per example)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.plan import LiveOptions, UsageError, check_options, read_sources_file
from runtime.plan import _parse, _split_name, _usable_name  # the steps check_options runs per line
from runtime.sources import KINDS, parse_source
from tests.fuzz.test_card_and_config import FUZZ, _bounded
from tests.runtime.helpers import write_video

# what a sources line is made of, weighted to the characters the parsers look at; surrogates
# stand for the bytes of a name that is not UTF-8 (Python keeps them as surrogate escapes)
SPECIAL = "=/\\.:!#0 \t\0_-"
chars = st.sampled_from(SPECIAL) | st.characters(exclude_categories=())
lines = st.text(chars, max_size=40) | st.sampled_from(["..=a.mp4", "../x=a.mp4", "a=..mp4", "rtsp://h/s?a=b",
                                                       "file://x.mp4", "v ! appsink", "0", "/dev/video0", "#x"])
FILE = settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _one_line(e: Exception) -> None:
    assert str(e) and "\n" not in str(e), repr(e)


@FUZZ
@given(lines)
@example("../x=a.mp4")
@example("caf\udce9.mp4")
@example("/\n\x00")  # found by hypothesis: the path's newline once reached the message
@example("\ud800")  # found by hypothesis: a lone surrogate once crashed the message's own encoding
def test_any_line_splits_and_parses_or_is_a_usage_error(text):
    try:
        name, source, spec = _bounded(_parse, text)
    except UsageError as e:
        _one_line(e)
        return
    assert name is None or _usable_name(name)
    assert spec.kind in KINDS and source == _split_name(text)[1]


@FUZZ
@given(lines)
def test_parse_source_gives_a_spec_or_a_value_error(text):
    try:
        spec = _bounded(parse_source, text)
    except ValueError as e:
        _one_line(e)
        return
    assert spec.kind in KINDS


def _file_bytes(text: str) -> bytes:
    """The file's bytes; a lone surrogate of ``lines`` (any, not only surrogate escapes) becomes
    the bytes UTF-8 would give it, which are not valid UTF-8: a file no editor should write."""
    return text.encode("utf-8", "surrogatepass")


@FILE
@given(st.lists(lines, max_size=8).map("\n".join).map(_file_bytes) | st.binary(max_size=200))
def test_any_sources_file_loads_or_is_a_usage_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sources.txt"
        path.write_bytes(data)
        try:
            got = _bounded(read_sources_file, path)
        except UsageError as e:
            _one_line(e)
            return
        assert got and all(ln == ln.strip() and ln and not ln.startswith("#") for ln in got)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("fuzz") / "clip.mp4", ["red"] * 2, size=(16, 16))


def _as_files(folder: str, texts: list[str], clip: Path) -> None:
    """Each line naming a plain file (no folder in it) becomes a real clip there, so the plan
    names streams from real files (``...mp4`` gives ``..``)."""
    for text in texts:
        try:
            source = _split_name(text)[1]
        except UsageError:
            continue
        if source and "/" not in source and "\0" not in source and source not in (".", ".."):
            try:
                os.link(clip, os.path.join(folder, source))
            except (OSError, UnicodeEncodeError):
                pass


@FILE
@given(st.lists(lines | st.sampled_from(["...mp4", "..mp4", ".mp4", "a.mp4"]), min_size=1, max_size=6))
def test_any_sources_plan_or_are_refused_and_never_escape_the_output_folder(clip, texts):
    """The whole plan over any lines, outputs named with {name}: the streams' names are usable
    and every output stays in the folder the template names."""
    with tempfile.TemporaryDirectory() as folder:
        _as_files(folder, texts, clip)
        cwd = os.getcwd()
        os.chdir(folder)  # relative names land in this folder
        try:
            opts = LiveOptions(sources=tuple(texts), out_jsonl=os.path.join(folder, "out", "{name}", "e.jsonl"))
            plans = _bounded(check_options, opts)
        except ValueError as e:  # UsageError, or OutputPathError from the output check
            _one_line(e)
            return
        finally:
            os.chdir(cwd)
        for plan in plans:
            assert _usable_name(plan.name)
            assert os.path.dirname(os.path.dirname(os.path.abspath(plan.out_jsonl))) == os.path.join(folder, "out")
