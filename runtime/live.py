"""Live action recognition: cameras / files / streams -> sliding windows -> model -> smoothed events.

    python -m runtime.live --model artifacts/demo/tsi_demo.onnx --source 0
    python -m runtime.live --source video.mp4 --headless --out-video out.mp4 --out-jsonl events.jsonl
    python -m runtime.live --source a=rtsp://cam-a/s --source b=rtsp://cam-b/s --headless \
        --out-jsonl out/{name}.jsonl          # several streams, one model, batched inference

This module is the command line (``tsi-live``): :func:`main` parses it into a
:class:`runtime.plan.LiveOptions` (whose defaults are the library's), turns SIGINT / SIGTERM /
SIGHUP into a clean stop and runs :func:`runtime.run.run_live`. The library: one stream is a
:class:`runtime.recognizer.LiveRecognizer` over a :class:`runtime.capture.FrameSource`; several run
on one model in :func:`runtime.scheduler.run_streams`; :func:`runtime.plan.check_options` checks a
run before anything loads. ``run_live``, ``LiveOptions`` and ``RunSummary`` are importable from
here too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Sequence

from runtime.backends import BACKENDS, BackendError
from runtime.card import CardError
from runtime.common.files import OutputLockedError
from runtime.common.video import VideoDecodeError
from runtime.cli import OneLineParser, install_stop_handlers
from runtime.gstreamer import GStreamerUnavailableError
from runtime.display import DisplayUnavailableError
from runtime.online import memory_arg
from runtime.outputs import OutputWriteError
from runtime.plan import DEFAULT_MODEL, DEFAULT_SOURCES, LiveOptions
from runtime.run import run_live
from runtime.serve.address import LOOPBACK, TOKEN_ENV
from runtime.sources import OPENCV_READ_TIMEOUT_S, SourceError
from runtime.summary import RunSummary
from runtime.window import WINDOW_STRIDE

log = logging.getLogger("runtime.live")  # not __main__ under python -m

__all__ = ["LiveOptions", "RunSummary", "build_parser", "main", "options_from_args", "run_live"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def _count_or_inf(text: str) -> int | None:
    if text.strip().lower() in ("inf", "unlimited", "none"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or inf (got {value})")
    return value


def _seconds_or_inf(text: str) -> float | None:
    if text.strip().lower() in ("inf", "unlimited", "none"):
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or inf (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = LiveOptions()  # the library's defaults
    p = OneLineParser(prog="tsi-live", description=__doc__.split("\n\n")[0])
    io = p.add_argument_group("model and sources")
    io.add_argument("--model", help=".onnx, .engine/.plan, .xml (OpenVINO IR), .pt or a served model "
                    "triton://HOST:PORT/NAME (gRPC; triton+http:// for HTTP; docs/serving.md) "
                    f"(default: {DEFAULT_MODEL}, else the shipped demo model)")
    io.add_argument("--card", help="model card JSON overriding the one found with the model")
    io.add_argument("--source", dest="sources", action="append", metavar="[NAME=]SOURCE",
                    help="camera index, video file, rtsp/http URL or a GStreamer pipeline "
                    "('... ! appsink'); repeat for several streams in one process (default: "
                    f"{' '.join(d.sources)} unless --sources is given)")
    io.add_argument("--sources", dest="sources_file", metavar="FILE",
                    help="a text file of sources, one per line ([NAME=]SOURCE; # comments)")
    io.add_argument("--backend", default=d.backend, choices=["auto", *BACKENDS],
                    help="default: from the model's suffix (openvino also reads .onnx)")
    io.add_argument("--providers", type=lambda s: [x for x in s.split(",") if x],
                    help="onnxruntime providers, comma separated: cpu,cuda,tensorrt")
    io.add_argument("--threads", type=_positive_int, help="onnxruntime intra-op / OpenVINO inference "
                    "threads (default: one per core)")
    io.add_argument("--plugin", metavar="LIB", help="TensorRT plugin library (.so) to load")
    io.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay a CUDA graph")
    io.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=d.realtime,
                    help="files: play at their fps dropping what inference cannot keep up with "
                    "(default), or --no-realtime to process every frame")
    io.add_argument("--buffer-size", type=_positive_int, default=d.buffer_size,
                    help="newest frames kept between capture and inference (%(default)s)")
    live = p.add_argument_group("live streams")
    live.add_argument("--stall-timeout", type=float, default=d.stall_timeout, metavar="S",
                      help="reconnect a stream that delivers no frame for S seconds (below "
                      f"OpenCV's own {OPENCV_READ_TIMEOUT_S:.0f} s read timeout; %(default)s)")
    live.add_argument("--reconnect-attempts", type=_count_or_inf, default=d.reconnect_attempts,
                      metavar="N", help="connection attempts after a drop, a stall or a source not "
                      "up at start, before giving up; inf: never give up (%(default)s)")
    live.add_argument("--reconnect-limit", type=_seconds_or_inf, default=d.reconnect_limit,
                      metavar="S", help="give up on an outage longer than S seconds; inf: no "
                      "limit (%(default)s)")
    rec = p.add_argument_group("recognition")
    rec.add_argument("--stride", type=_positive_int, default=d.stride,
                     help=f"scores every N frames (default: {WINDOW_STRIDE} for a clip model; for an online "
                     "model the card's frame step, and N must divide it)")
    rec.add_argument("--online-memory", type=memory_arg, default=d.online_memory, metavar="M",
                     help="an online model reports a state that has seen T to M sampled frames (M >= T): "
                     "K states per phase reset in turn, K steps an output (runtime.online); auto: 3T/2 "
                     "(K = 3 at T = 8); none: one state from the stream's start, one step (%(default)s)")
    rec.add_argument("--smoothing", choices=["ema", "mean"], default=d.smoothing, help="(%(default)s)")
    rec.add_argument("--smooth-n", type=_positive_int, default=d.smooth_n, help="windows averaged by mean (%(default)s)")
    rec.add_argument("--ema-alpha", type=float, default=d.ema_alpha, help="factor of ema (%(default)s)")
    rec.add_argument("--threshold", type=float, default=d.threshold, help="min smoothed score of an action (%(default)s)")
    rec.add_argument("--topk", type=_positive_int, default=d.topk, help="labels drawn on the frame (%(default)s)")
    rec.add_argument("--pad-short", action=argparse.BooleanOptionalAction, default=d.pad_short,
                     help="classify a clip shorter than the model's span once with a padded window, "
                     "marked \"padded\" (default: on)")
    out = p.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window (write files instead)")
    out.add_argument("--out-video", help="annotated video (.mp4 .m4v .mov .avi .mkv); with several "
                     "sources put {name} or {index} in the name")
    out.add_argument("--out-jsonl", help="recognised actions and gaps, one JSON per line, then a "
                     "summary (.jsonl); with several sources put {name} or {index} in the name")
    out.add_argument("--max-frames", type=_positive_int, help="stop after N frames (per stream)")
    out.add_argument("--duration", type=float, help="stop after N seconds")
    web = p.add_argument_group("serving (see docs/serve.md)")
    web.add_argument("--serve", metavar="[HOST:]PORT", help="serve a page of the live video, top-k and "
                     f"events, /metrics, /healthz and /events on PORT ({LOOPBACK} unless HOST is given)")
    web.add_argument("--serve-token", metavar="TOKEN", help="require this token on every request "
                     f"(?token= or Authorization: Bearer; default: ${TOKEN_ENV} if set)")
    web.add_argument("--serve-fps", type=float, default=d.serve_fps, metavar="N",
                     help="the most video frames a second sent to a browser (%(default)s)")
    web.add_argument("--serve-down-limit", type=float, default=d.serve_down_limit, metavar="S",
                     help="/healthz turns unhealthy once every stream has been down S seconds (%(default)s)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def options_from_args(args: argparse.Namespace) -> LiveOptions:
    """The parsed command line as :class:`LiveOptions`."""
    names = LiveOptions.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("sources") is None:
        values["sources"] = () if args.sources_file else DEFAULT_SOURCES
    else:
        values["sources"] = tuple(values["sources"])
    return LiveOptions(**values)


_USER_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError, OutputLockedError, CardError, BackendError,
                GStreamerUnavailableError, DisplayUnavailableError, OutputWriteError, VideoDecodeError,
                ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:  # under systemd (journald stamps each line) no time
        stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
        logging.basicConfig(format=stamp + "%(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime").setLevel(args.log_level)
    stop = threading.Event()
    restore = install_stop_handlers(stop)
    try:
        summaries = run_live(options_from_args(args), stop=stop)
    except _USER_ERRORS as e:
        log.error("%s", e)
        return 2
    except SourceError as e:
        log.error("source failed: %s", e)
        return 1
    finally:
        restore()
    return 0 if all(s.error is None for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
