"""File helpers every package uses: atomic writes (a temporary name in the target's own folder, then
a rename, so a crash never leaves a half-written file under the final name and no rename crosses file
systems), an advisory lock that keeps two runs from writing one output, and the sha256 that keys
models to their cards, caches and engines."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


class OutputLockedError(FileExistsError):
    """An output that another run is writing now (its advisory lock is held)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path in the folder of ``path``, renamed onto ``path`` when the block succeeds and
    removed when it fails: a crash never leaves a half-written file under the final name. The file
    gets the permissions a plain ``open`` would give it (mkstemp's are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`), flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB chunks (keys models to their cards, caches and engines)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stale_temp_re(target: Path) -> re.Pattern[str]:
    # what atomic_path names a temporary: "." + stem + "." + mkstemp's 8 characters + a suffix
    # starting ".tmp" or ".partial"
    return re.compile(rf"^\.{re.escape(target.stem)}\.[a-z0-9_]{{8}}\.(tmp|partial)")


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove what an interrupted atomic write of ``target`` left beside it (a ``kill -9`` during
    the write). Only safe while :func:`exclusive` holds ``target``'s lock: no other run can be
    writing one of them then. Returns what was removed."""
    target = Path(target)
    pattern = _stale_temp_re(target)
    removed = []
    if target.parent.is_dir():
        for p in target.parent.iterdir():
            if pattern.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) an interrupted write of %s left: %s", len(removed), target,
                 ", ".join(p.name for p in removed[:3]))
    return removed


@contextlib.contextmanager
def exclusive(target: str | os.PathLike) -> Iterator[Path]:
    """Hold an advisory lock on ``target`` (a file or a folder) for the block: a second run that
    asks for the same output while the first holds it is refused at once with
    :class:`OutputLockedError`, and the first's files stay intact. The kernel releases the lock
    when the process ends however it ends (``kill -9`` included). The lock file (``.<name>.lock``
    beside the target) is removed on release while still held (a newcomer re-checks it locked the
    file at the path); only a killed run leaves it, and the next run reuses it. Temporaries
    an interrupted write of ``target`` left are removed once the lock is held."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(f"{target} is being written by another run now (it holds {lock}); "
                                    "wait for it to finish or choose another output") from None
        try:  # the holder before us may have removed the file we locked: lock the one at the path
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        remove_stale_temps(target)
        yield lock
    finally:
        os.unlink(lock)  # still held: a newcomer that opened it finds it gone and opens a new one
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
