"""What the PyTorch side's command lines share (``tsi-train``, ``tsi-evaluate``, ``tsi-info``,
``tsi-plots``, ``tsi-synthetic``, ``tsi-extract``): argument types that refuse what no run can use
when the command line is parsed, and one table of user-error types that :func:`cli_main` turns into
one line on stderr and exit status 2. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from runtime.card import CardError
from runtime.cli import OneLineParser
from runtime.common.video import VideoDecodeError

__all__ = ["UsageError", "cli_main", "finite_float", "fraction", "new_output_file", "non_negative_float",
           "non_negative_int", "output_folder", "parser", "positive_float", "positive_int", "user_errors",
           "weight_below_one"]


class UsageError(ValueError):
    """A user mistake a tsi command found: an option, a file or a folder that cannot be used."""


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The commands' parser, named as its console script (also under ``python -m``): usage errors
    in one line (exit 2), the module docstring as help."""
    return OneLineParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def _number(cast: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    parse.__name__ = what  # argparse names the type in its message
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number >= 0")
finite_float = _number(float, math.isfinite, "a finite number")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
non_negative_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
fraction = _number(float, lambda v: math.isfinite(v) and 0 < v <= 1, "a number in (0, 1]")
weight_below_one = _number(float, lambda v: math.isfinite(v) and 0 <= v < 1, "a number in [0, 1)")


def new_output_file(path: str | os.PathLike | None, flag: str) -> None:
    """Refuse, before any work, an output that cannot be written: a folder in its place, a parent
    that is a file, or a parent that is not writable."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {p} is a folder; give a file name")
    _check_writable_above(p, p.parent, flag)


def _check_writable_above(p: Path, start: Path, flag: str) -> None:
    """The nearest existing folder at or above ``start`` must be a writable folder."""
    parent = next((q for q in (start, *start.parents) if q.exists()), Path("."))
    if not parent.is_dir():
        raise UsageError(f"{flag} {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {p}: {parent} is not writable")


def output_folder(path: str | os.PathLike, flag: str) -> Path:
    """``--out`` as a folder: refused before any work when a file stands in its place or a parent
    is not writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {p} is a file, not a folder")
    _check_writable_above(p, p, flag)
    return p


def user_errors() -> tuple[type[BaseException], ...]:
    """The one table of what a user's mistake raises on the PyTorch side: :class:`UsageError` and
    its subclasses (a dataset layout, a log, a weights file that cannot be used), the card's and
    the video reader's errors, the file system's refusals, and :class:`tsi.checkpoint.CheckpointError`
    once that module (it imports torch) is loaded, so importing this one stays cheap."""
    errors: list[type[BaseException]] = [UsageError, CardError, VideoDecodeError, FileNotFoundError,
                                         FileExistsError, NotADirectoryError, IsADirectoryError,
                                         PermissionError]
    ckpt = sys.modules.get("tsi.checkpoint")
    if ckpt is not None:
        errors.append(ckpt.CheckpointError)
    return tuple(errors)


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def cli_main(run: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None, prog: str) -> int:
    """Run a command's ``run(argv)``: its result's exit code (0 unless it returns an int), or 2 with
    one line for a user error or a file system that refused a write (full, read-only)."""
    try:
        result = run(argv)
    except user_errors() as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.ENAMETOOLONG):
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or _one_line(e)}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
