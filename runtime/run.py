"""The whole ``tsi-live`` program for a :class:`runtime.plan.LiveOptions`, as a library call:
:func:`run_live` checks the options, opens the display, the model and the sources, runs every
stream (:func:`runtime.scheduler.run_streams`) and releases everything."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from runtime.backends import open_model
from runtime.capture import FrameSource
from runtime.common.files import OutputLockedError, exclusive
from runtime.display import WindowDisplay
from runtime.outputs import OutputPathError
from runtime.plan import LiveOptions, check_options, resolve_model_path
from runtime.reconnect import ReconnectPolicy
from runtime.recognizer import LiveRecognizer
from runtime.scheduler import run_streams
from runtime.serve.start import serving, watchdog
from runtime.sink import LiveOutputs
from runtime.summary import RunSummary

log = logging.getLogger(__name__)

__all__ = ["run_live"]


def _hold(stack: contextlib.ExitStack, out: Path, flag: str) -> None:
    """Lock ``out`` for the run (:func:`exclusive`); a folder that cannot be made or written (a
    read-only file system, /sys) is refused naming the flag."""
    try:
        stack.enter_context(exclusive(out))
    except OutputLockedError:
        raise
    except OSError as e:
        raise OutputPathError(f"{flag} {out}: cannot write there ({e.strerror or e})") from None


def run_live(opts: LiveOptions, stop: threading.Event | None = None) -> list[RunSummary]:
    """Check everything, open the window (unless headless), the model and the sources; run;
    release everything. One summary per stream."""
    plans = check_options(opts)
    model = resolve_model_path(opts.model)
    policy = ReconnectPolicy(max_retries=opts.reconnect_attempts, timeout=opts.reconnect_limit)
    sources = [FrameSource(pl.source, realtime=opts.realtime, buffer_size=opts.buffer_size,
                           reconnect=policy, stall_timeout=opts.stall_timeout) for pl in plans]
    with contextlib.ExitStack() as stack:
        for pl in plans:  # a second run writing one of these outputs is refused before anything loads
            for flag, out in (("--out-jsonl", pl.out_jsonl), ("--out-video", pl.out_video)):
                if out is not None:
                    _hold(stack, out, flag)
        board = stack.enter_context(serving(opts, [pl.name for pl in plans]))  # listening now
        display = None
        if not opts.headless:
            display = WindowDisplay()  # fail before loading anything if there is no GUI
            stack.callback(display.close)
        elif not (opts.out_video or opts.out_jsonl or board):
            log.warning("--headless without --out-video / --out-jsonl: results are only logged")
        backend = stack.enter_context(open_model(
            model, opts.backend, card=opts.card, providers=opts.providers, plugin=opts.plugin,
            cuda_graph=opts.cuda_graph, threads=opts.threads, reconnect=policy,
            stop=stop))  # the card's mode picks clip or online; a triton:// server waited for under the policy
        recognizers = []
        for pl in plans:
            rec = LiveRecognizer(backend, stride=opts.stride, smoothing=opts.smoothing,
                                 smooth_n=opts.smooth_n, ema_alpha=opts.ema_alpha,
                                 threshold=opts.threshold, topk=opts.topk, pad_short=opts.pad_short,
                                 name=pl.name, memory=opts.online_memory)
            rec.listener = board
            recognizers.append(rec)
        first = recognizers[0]
        how, detail = first.window.describe()
        rows = len(plans) * first.window.tracks
        log.info("model %s (%s, %s): %d labels, T=%d, %dx%d, span %d frames, stride %d%s; %d stream(s)%s",
                 model, backend.name, how, first.card.num_classes, first.card.frames,
                 first.card.input_size, first.card.input_size, first.span, first.stride, detail,
                 len(plans), "" if rows == 1 or backend.fixed_batch is None else
                 f" (the model's batch is fixed at {backend.fixed_batch}: {rows} rows a tick (streams x tracks) are "
                 "inferred in chunks; export with --dynamic-batch for one inference)")
        for pl, src, rec in zip(plans, sources, recognizers):
            stack.enter_context(src)  # started; stopped (thread joined, capture released) on exit
            rec.outputs = LiveOutputs(pl.out_jsonl, pl.out_video,
                                      fps=None if src.spec.live else src.fps,
                                      stream=pl.name if len(plans) > 1 else None)
            stack.callback(rec.outputs.close)
        stack.enter_context(watchdog(board))
        return run_streams(backend, list(zip(recognizers, sources)), max_frames=opts.max_frames,
                           duration=opts.duration, stop=stop, display=display, board=board)
    raise AssertionError("unreachable")  # pragma: no cover
