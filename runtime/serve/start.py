"""Putting ``--serve`` together for :func:`runtime.run.run_live`: the options checked before
anything loads (:func:`check_serve`), then the board, the metrics and the server, listening before
the model loads and closed with the run (:func:`serving`)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from runtime.serve.address import parse_address, resolve_token
from runtime.serve.board import Board
from runtime.serve.metrics import Metrics, require_prometheus
from runtime.serve.server import LiveServer
from runtime.serve.watchdog import Watchdog

__all__ = ["check_serve", "serving", "watchdog"]


def check_serve(opts: Any) -> None:
    """``--serve`` and its options (ValueError naming the problem); nothing when not serving."""
    if opts.serve is None:
        if opts.serve_token is not None:
            raise ValueError("--serve-token needs --serve [HOST:]PORT")
        return
    parse_address(opts.serve)
    resolve_token(opts.serve_token)
    if not opts.serve_fps > 0:
        raise ValueError(f"--serve-fps must be > 0 (got {opts.serve_fps})")
    if not opts.serve_down_limit > 0:
        raise ValueError(f"--serve-down-limit must be > 0 s (got {opts.serve_down_limit})")
    try:
        require_prometheus()
    except ImportError as e:
        raise ValueError(str(e)) from None


@contextlib.contextmanager
def serving(opts: Any, names: Sequence[str]) -> Iterator[Board | None]:
    """The board the run publishes to, served on ``opts.serve`` (None when not serving). A port
    that cannot be listened on is a ValueError naming it."""
    if opts.serve is None:
        yield None
        return
    host, port = parse_address(opts.serve)
    metrics = Metrics()
    board = Board(names, down_limit=opts.serve_down_limit, metrics=metrics)
    metrics.board = board
    try:
        server = LiveServer(board, metrics, host, port, token=resolve_token(opts.serve_token),
                            fps=opts.serve_fps)
    except OSError as e:
        raise ValueError(f"--serve {opts.serve}: cannot listen there ({e.strerror or e})") from None
    try:
        yield board
    finally:
        server.close()


def watchdog(board: Board | None) -> contextlib.AbstractContextManager:
    """systemd's READY=1 and watchdog pings from the board's health, when serving."""
    if board is None:
        return contextlib.nullcontext()
    return contextlib.closing(Watchdog(board))
