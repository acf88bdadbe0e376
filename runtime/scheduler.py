"""Several streams on one model: each stream's recogniser (:class:`runtime.recognizer.LiveRecognizer`)
has its own window, smoothing, events and outputs; what is due over the streams (a clip model's
clips, an online model's steps) is inferred together in one batch (:func:`run_streams`). When a
served model's server went away and came back meanwhile (the backend sent the requests again: no
window is lost), every stream gets a ``server_down`` gap."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Sequence

import numpy as np

from runtime.backends.base import BackendStopped
from runtime.capture import FrameSource
from runtime.frames import EndOfStream
from runtime.display import PAUSE, QUIT, RESET, WindowDisplay
from runtime.outputs import OutputWriteError
from runtime.overlay import mosaic
from runtime.sources import SourceError
from runtime.summary import RunSummary, log_summary

log = logging.getLogger(__name__)

__all__ = ["run_streams"]


class _Stream:
    def __init__(self, rec: Any, src: FrameSource) -> None:
        self.rec, self.src = rec, src
        self.reason: str | None = None
        self.error: BaseException | None = None
        self.write_error: OutputWriteError | None = None  # its outputs failed (a full disk)


def run_streams(backend: Any, streams: Sequence[tuple[Any, FrameSource]], *,
                max_frames: int | None = None, duration: float | None = None,
                stop: threading.Event | None = None, display: WindowDisplay | None = None,
                poll_s: float = 0.25, raise_errors: bool = False, board: Any = None) -> list[RunSummary]:
    """Run several streams (sources already started) on one model: each has its own window,
    smoothing, events and outputs; the clips (online: the steps) due over the streams are inferred
    together in one batch, round by round (an online step per stream and round). A stream ends on
    its own (end of file, lost stream: the others go on); ``max_frames`` counts per stream;
    ``duration``, ``stop``, quitting the window or Ctrl-C end them all. ``display``: a
    :class:`runtime.display.WindowDisplay` (its pause stops every stream until resumed, its reset
    resets every stream's state). Returns one summary per stream (in order), each also written to
    its outputs. With ``raise_errors``, the first stream error is re-raised after every summary is
    written; an output that could not be written (:class:`OutputWriteError`) always is.
    ``board``: a :class:`runtime.serve.board.Board` given each stream's state after every loop
    (and its newest annotated frame while someone watches)."""
    if not streams:
        raise ValueError("no streams")
    card = streams[0][0].card
    for rec, _ in streams:
        if rec.card.input_shape != card.input_shape:
            raise ValueError("every stream must use the same model card geometry")
    def infer(clips: np.ndarray) -> np.ndarray:  # a short clip's padded window (a clip model's)
        return backend.infer_batch(clips)

    wake = threading.Event()
    all_streams = [_Stream(rec, src) for rec, src in streams]
    for st in all_streams:
        st.src.set_notify(wake)
    batch = type(all_streams[0].rec.window).batch(backend, len(all_streams))  # the mode's batched inference
    active = list(all_streams)
    summaries: dict[int, RunSummary] = {}
    t0 = time.monotonic()
    stopped_by: str | None = None

    def end(st: _Stream, reason: str, error: BaseException | None = None) -> None:
        st.reason, st.error = reason, error
        rec = st.rec
        try:
            rec.finish(reason, infer=infer)
        except OutputWriteError as e:  # not the stream's failure: raised once every stream ended
            st.write_error = e
        except Exception as e:  # noqa: BLE001 - the padded inference failed: summarised
            if error is None:
                st.reason, st.error = "error", e
        wall = time.monotonic() - t0
        summary = rec.summary(st.reason, wall, st.src.stats.as_dict(), st.error,
                              stopped_by if reason == "stopped" else None)
        log_summary(summary)
        if rec.outputs is not None:
            try:
                rec.outputs.summary(summary)
            except OutputWriteError as e:
                st.write_error = e
        summaries[id(st)] = summary
        active.remove(st)
        if board is not None:
            board.ended(all_streams.index(st), rec, st.src, st.reason)

    def end_all(reason: str, error: BaseException | None = None) -> None:
        for st in list(active):
            end(st, reason, error)

    try:
        while active:
            if stop is not None and stop.is_set():
                stopped_by = getattr(stop, "signal_name", None)
                end_all("stopped")
                break
            if duration is not None and time.monotonic() - t0 >= duration:
                end_all("duration")
                break
            wake.clear()
            got = False
            for st in list(active):
                if st.rec.pending or st.rec.due:
                    continue  # offline: frames still to consume / a clip waiting for its batch
                remaining = None if max_frames is None else max_frames - st.rec.frames
                if remaining is not None and remaining <= 0:
                    end(st, "max_frames")
                    continue
                try:  # offline (files, every frame): wait for the frames, the batch waits for it
                    frames = st.src.read_batch(timeout=0.0 if st.src.realtime else poll_s,
                                               max_frames=remaining)
                except EndOfStream:
                    end(st, "end_of_stream")
                    continue
                except SourceError as e:
                    end(st, "source_error", e)
                    continue
                if frames:
                    st.rec.feed(frames)
                    got = True
            inferred = False
            while True:  # rounds: one batched inference over the streams with a clip or step due
                due = [st for st in active if st.rec.step(latest_only=st.src.realtime)]
                if due and any(not st.src.realtime and not st.rec.due for st in active):
                    break  # offline: an active stream needs more frames first (lock-step batches)
                if due:
                    t = time.perf_counter()
                    logits, carried = batch([st.rec.window for st in due])
                    ms = (time.perf_counter() - t) * 1e3
                    for i, st in enumerate(due):
                        st.rec.apply(logits[i], ms, carried[i])
                    inferred = True
                shown = display is not None or (board is not None and board.watchers > 0)
                for st in active:
                    st.rec.emit(shown)
                if not due or not any(st.rec.pending for st in active):
                    break
            outage = backend.take_outage()  # a served model's server went away and came back
            if outage is not None:
                for st in active:
                    st.rec.server_gap(outage.attempts)
            if board is not None:
                for i, st in enumerate(all_streams):
                    if st in active:
                        board.publish(i, st.rec, st.src, st.rec.last_image if board.watchers else None)
            if display is not None and (got or inferred):
                recs = [st.rec for st in all_streams]
                image = (recs[0].last_image if len(recs) == 1 else
                         mosaic([r.last_image for r in recs], [r.name or str(i) for i, r in enumerate(recs)]))
                action = display.show(image) if image is not None else None
                if action == PAUSE:
                    action = display.pause(stop)
                if action == QUIT:
                    end_all("quit")
                    break
                if action == RESET:
                    for st in active:
                        st.rec.reset()
                    log.info("reset by the window's r key: every stream's events closed, %s and smoothing reset",
                             all_streams[0].rec.window.resets_what)
            if not got and not inferred and active and all(st.src.realtime for st in active):
                wake.wait(poll_s)
    except KeyboardInterrupt:
        end_all("interrupted")
    except BackendStopped as e:  # stopped while the backend waited for a served model's server
        log.warning("%s", e)
        stopped_by = getattr(stop, "signal_name", None)
        end_all("stopped")
    except Exception as e:  # noqa: BLE001 - e.g. the backend failed: summarised, then re-raised
        end_all("error", e)
        raise
    out = [summaries[id(st)] for st in all_streams]
    for st in all_streams:
        if st.write_error is not None:
            raise st.write_error
    if raise_errors:
        for st in all_streams:
            if st.error is not None:
                raise st.error
    return out
