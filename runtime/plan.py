"""The run plan: the options of a ``tsi-live`` run (:class:`LiveOptions`) and every check that
needs neither the model nor a live source (:func:`check_options`, before anything loads), which
turns them into one :class:`StreamPlan` per stream; and the model file (:func:`resolve_model_path`).
A mistake is a :class:`UsageError`: one line, exit status 2."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2

from runtime import recognizer
from runtime.assets import demo_model
from runtime.backends.triton_client import is_triton_url
from runtime.capture import BUFFER_SIZE, STALL_TIMEOUT_S
from runtime.common.video import VideoDecodeError, check_openable_path, shown_path
from runtime.outputs import JSONL_SUFFIXES, WRITABLE_VIDEO_SUFFIXES, check_output_path
from runtime.reconnect import ReconnectPolicy, check_attempts, check_limit
from runtime.serve.board import DOWN_LIMIT_S
from runtime.serve.jpeg import SERVE_FPS
from runtime.serve.start import check_serve
from runtime.sources import SourceSpec, check_realtime, check_stall_timeout, parse_source

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SOURCES",
    "LiveOptions",
    "StreamPlan",
    "UsageError",
    "check_options",
    "read_sources_file",
    "resolve_model_path",
]

DEFAULT_MODEL = Path("artifacts/demo/tsi_demo.onnx")
BUILD_COMMAND = "python export/build_engine.py"


def resolve_model_path(model: str | Path | None) -> Path | str:
    """``model``, or the demo model when None (``DEFAULT_MODEL`` if built here, else the one the
    runtime package ships); a clear error when the file is missing. A ``triton://`` address (a
    served model) is returned as it is."""
    if model is None:
        demo = demo_model(DEFAULT_MODEL)
        if demo is None:
            raise FileNotFoundError(
                f"no --model given and the demo model {DEFAULT_MODEL} does not exist: build it with "
                f"`{BUILD_COMMAND}` (from the repository root), or pass --model PATH"
            )
        return demo
    if is_triton_url(model):
        return str(model)
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


DEFAULT_SOURCES = ("0",)  # camera 0
MAX_LISTED = 5  # missing files named in the one line


@dataclass
class LiveOptions:
    """Everything :func:`runtime.run.run_live` needs. Each default is the one of the code that uses
    it (the recogniser, the frame source, the reconnect policy); the command line shows these."""

    model: str | None = None
    sources: tuple[str, ...] = DEFAULT_SOURCES
    sources_file: str | None = None
    card: str | None = None
    backend: str = "auto"
    providers: list[str] | None = None
    plugin: str | None = None
    cuda_graph: bool = False
    threads: int | None = None
    stride: int | None = None  # None: the window's (WINDOW_STRIDE for a clip model, the card's frame step online)
    online_memory: int | str | None = recognizer.ONLINE_MEMORY  # None: unbounded (runtime.online.resolve_memory)
    smoothing: str = recognizer.SMOOTHING
    smooth_n: int = recognizer.SMOOTH_N
    ema_alpha: float = recognizer.EMA_ALPHA
    threshold: float = recognizer.THRESHOLD
    topk: int = recognizer.TOPK
    pad_short: bool = recognizer.PAD_SHORT
    realtime: bool | None = None
    buffer_size: int = BUFFER_SIZE
    stall_timeout: float = STALL_TIMEOUT_S
    reconnect_attempts: int | None = ReconnectPolicy.max_retries
    reconnect_limit: float | None = ReconnectPolicy.timeout
    headless: bool = False
    out_video: str | None = None
    out_jsonl: str | None = None
    max_frames: int | None = None
    duration: float | None = None
    serve: str | None = None  # [HOST:]PORT (runtime.serve)
    serve_token: str | None = None  # else $TSI_SERVE_TOKEN
    serve_fps: float = SERVE_FPS
    serve_down_limit: float = DOWN_LIMIT_S


class UsageError(ValueError):
    """A mistake in the options or the files named (one line, exit status 2)."""


_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.+)$")


@dataclass(frozen=True)
class StreamPlan:
    """One stream of a run, checked: its name, source and output files."""

    name: str
    source: str
    spec: SourceSpec
    out_jsonl: Path | None
    out_video: Path | None


def read_sources_file(path: str | Path) -> list[str]:
    """The sources of a sources file: one per line (``NAME=SOURCE`` names it), blank lines and
    lines starting with ``#`` ignored."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"sources file {p} is a folder, not a text file")
    if not p.is_file():
        raise UsageError(f"sources file not found: {p}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read sources file {p}: {e}") from None
    out = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not out:
        raise UsageError(f"sources file {p} names no source (one per line, NAME=SOURCE or SOURCE)")
    return out


def _usable_name(name: str) -> bool:
    """A stream name that can go into a file name: not empty, ``.`` or ``..``, no separator or NUL."""
    return name.strip(".") != "" and not any(c in name for c in "/\\\0")


def _split_name(text: str) -> tuple[str | None, str]:
    text = text.strip()
    m = _NAME_RE.match(text)
    if m and "://" not in m.group(1) and "!" not in text.split("=", 1)[0]:
        return m.group(1), m.group(2).strip()
    head = text.split("=", 1)[0].strip() if "=" in text else None
    if (head is not None and "://" not in head and "!" not in head and not _usable_name(head)
            and not os.path.exists(text)):
        raise UsageError(f"source {text!r}: no such file, and {head!r} cannot be a stream name "
                         "(NAME=SOURCE: letters, digits, _ . -; not . or .., no / or \\)")
    return None, text


def _default_name(spec: SourceSpec, i: int) -> str:
    if spec.kind == "file":
        return Path(str(spec.target)).stem
    if spec.kind == "camera":
        return f"camera{spec.target}" if isinstance(spec.target, int) else Path(str(spec.target)).name
    return f"stream{i}"


def _name_for(opts: LiveOptions, spec: SourceSpec, source: str, i: int) -> str:
    """The default name of stream ``i``; one a file name cannot hold (``..mp4`` gives ``.``) is
    ``stream{i}``, refused when an output's ``{name}`` would silently become that."""
    name = _default_name(spec, i)
    if _usable_name(name):
        return name
    for flag, template in (("--out-jsonl", opts.out_jsonl), ("--out-video", opts.out_video)):
        if template is not None and "{name" in template:
            raise UsageError(f"{flag} {template}: source {source} gives no usable stream name "
                             f"({name!r}): name it, e.g. --source stream{i}={source}")
    return f"stream{i}"


def _template_folder(template: str) -> Path:
    """The folder an output template names: its leading parts, up to the first with a field."""
    parts = Path(template).parts
    k = min(next((k for k, p in enumerate(parts) if "{" in p), len(parts)), len(parts) - 1)
    return Path(*parts[:k]) if k > 0 else Path(".")


def _expand(template: str | None, name: str, index: int, several: bool, what: str) -> Path | None:
    if template is None:
        return None
    if several and "{name}" not in template and "{index}" not in template:
        raise UsageError(f"{what} {template}: with several sources the name needs {{name}} or "
                         f"{{index}} (e.g. out/{{name}}{Path(template).suffix or '.jsonl'}) so each "
                         "stream gets its own file")
    try:
        path = Path(template.format(name=name, index=index))
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(f"{what} {template}: only {{name}} and {{index}} may be used ({e})") from None
    folder = os.path.abspath(_template_folder(template))  # by name: a link in it is the user's
    if os.path.commonpath([folder, os.path.abspath(path)]) != folder:
        raise UsageError(f"{what} {template}: stream {name!r} would write {path}, outside {folder}")
    return path


def _check_openable(target: str) -> None:
    try:  # OpenCV crashes the process on a name that is not valid UTF-8
        check_openable_path(target)
    except VideoDecodeError as e:
        raise UsageError(f"source {e}") from None


def _check_file_source(spec: SourceSpec) -> None:
    path = Path(str(spec.target))
    if path.is_dir():
        raise UsageError(f"source {path} is a folder, not a video file (several streams: pass "
                         "--source once per stream, or --sources FILE)")
    if not os.access(path, os.R_OK):
        raise UsageError(f"video file {path}: no permission to read it")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UsageError(f"cannot open video file {path} (unsupported or corrupt file?)")
    finally:
        cap.release()


def check_options(opts: LiveOptions) -> list[StreamPlan]:
    """Every check that needs neither the model nor a live source, before anything is loaded:
    the numbers, the sources (files exist, are files and open), the output names (extension,
    folder, one per stream, none the same as a source or another output). Raises
    :class:`UsageError` naming the problem."""
    try:
        _check_numbers(opts)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if opts.card is not None and not Path(opts.card).is_file():
        raise UsageError(f"model card not found: {opts.card}")
    texts = list(opts.sources)
    if opts.sources_file:
        texts += read_sources_file(opts.sources_file)
    if not texts:
        raise UsageError("no source: pass --source (or --sources FILE)")
    parsed = [_parse(text) for text in texts]
    _check_found([spec for _, _, spec in parsed])
    several = len(texts) > 1
    plans = [_plan_stream(opts, p, i, several) for i, p in enumerate(parsed)]
    _check_distinct(plans, opts)
    return plans


def _check_numbers(opts: LiveOptions) -> None:
    if not 0.0 <= opts.threshold <= 1.0:
        raise ValueError(f"--threshold must be in [0, 1] (got {opts.threshold})")
    if not 0.0 < opts.ema_alpha <= 1.0:
        raise ValueError(f"--ema-alpha must be in (0, 1] (got {opts.ema_alpha})")
    if opts.duration is not None and not opts.duration > 0:
        raise ValueError(f"--duration must be > 0 (got {opts.duration})")
    check_stall_timeout(opts.stall_timeout, "--stall-timeout")
    if opts.stall_timeout is None:
        raise ValueError("--stall-timeout must be a number of seconds")
    check_attempts(opts.reconnect_attempts, "--reconnect-attempts", unlimited="inf")
    check_limit(opts.reconnect_limit, "--reconnect-limit", unlimited="inf")
    check_serve(opts)


def _parse(text: str) -> tuple[str | None, str, SourceSpec]:
    """One ``[NAME=]SOURCE``: its name (None: none given), source and parsed spec."""
    name, source = _split_name(text)
    try:
        spec = parse_source(source)
    except ValueError as e:
        raise UsageError(f"source {text!r}: {e}") from None
    if isinstance(spec.target, str):
        _check_openable(spec.target)  # before any look at the file
    return name, source, spec


def _check_found(specs: list[SourceSpec]) -> None:
    """Every video file that is not there, named in one line (the first MAX_LISTED)."""
    missing = [shown_path(s.target) for s in specs if s.kind == "file" and not os.path.exists(s.target)]
    if len(missing) == 1:
        raise UsageError(f"video file not found: {missing[0]}")
    if missing:
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise UsageError(f"video files not found: {', '.join(missing[:MAX_LISTED])}{more}")


def _plan_stream(opts: LiveOptions, parsed: tuple[str | None, str, SourceSpec], i: int,
                 several: bool) -> StreamPlan:
    """One parsed source: its file checked, its outputs named and checked."""
    name, source, spec = parsed
    if spec.kind == "file":
        _check_file_source(spec)
    try:
        check_realtime(spec, opts.realtime, "--no-realtime")
    except ValueError as e:
        raise UsageError(str(e)) from None
    name = name or _name_for(opts, spec, source, i)
    jsonl = _expand(opts.out_jsonl, name, i, several, "--out-jsonl")
    video = _expand(opts.out_video, name, i, several, "--out-video")
    if jsonl is not None:
        check_output_path(jsonl, JSONL_SUFFIXES, "--out-jsonl")
    if video is not None:
        check_output_path(video, WRITABLE_VIDEO_SUFFIXES, "--out-video")
    return StreamPlan(name, source, spec, jsonl, video)


def _same_file(a: Path, b: Path) -> bool:
    """One file: ``os.path.samefile`` when both exist (links), else the same resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except (OSError, ValueError):
        pass
    return a.resolve() == b.resolve()


def _check_distinct(plans: list[StreamPlan], opts: LiveOptions) -> None:
    """No two streams of one name, no two outputs of one file, no output that is an input (a file
    source, the --sources file, the --model or the --card)."""
    names = [pl.name for pl in plans]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"two streams are named {dup[0]!r}: name them (NAME=SOURCE)")
    outs = [o.resolve() for pl in plans for o in (pl.out_jsonl, pl.out_video) if o is not None]
    if len(set(outs)) != len(outs):
        raise UsageError("two outputs have the same file name")
    inputs = [(f"the source {pl.source}", Path(str(pl.spec.target))) for pl in plans if pl.spec.kind == "file"]
    inputs += [(f"the {flag} file", Path(value)) for flag, value in
               (("--sources", opts.sources_file), ("--model", opts.model), ("--card", opts.card)) if value]
    for pl in plans:
        for flag, out in (("--out-jsonl", pl.out_jsonl), ("--out-video", pl.out_video)):
            for what, path in inputs if out is not None else ():
                if _same_file(out, path):
                    raise UsageError(f"{flag} {out} is also {what}: it would be overwritten")
