"""Progress bars only on a terminal: every progress bar of the project comes from
:func:`progress_bar`, a tqdm bar that is drawn only when stderr (where tqdm writes) is a terminal.
Redirected to a file (a training run under ``nohup`` or ``> run.log 2>&1``, a CI log), the bar is
disabled — it still iterates, but writes nothing, so no carriage-return redraws pile up in the file;
the callers log one line per epoch or stage instead, which they do in either case.

tqdm is imported only when a bar is made (the torch-free runtime does not need it).
"""

from __future__ import annotations

import sys
from typing import IO, Any, Iterable


def on_terminal(stream: IO | None = None) -> bool:
    """Whether ``stream`` (default: the current ``sys.stderr``) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """``tqdm(iterable, **kwargs)``, shown only when ``enabled`` and stderr is a terminal (else
    disabled: iterating it yields ``iterable``'s items, ``update`` / ``set_postfix`` / ``close`` do
    nothing)."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not (enabled and on_terminal()), **kwargs)
