"""The build's outputs: logged stages, the files a build may write, who made an existing file, and
the staging folder: :func:`run_staged` builds into a folder inside ``--out`` and moves the files
into place only when the build succeeded (the clip build and the online export both run through it).

``stage`` is the ultralytics-style wrapper: it logs a stage's time and the sizes of the files it
reports, and re-raises a failure (a user error is reported once, by the command, so the stage logs
it at debug level; a bug is logged as an error and goes on as a traceback). :func:`claim_out` holds
``--out`` for a whole build: a second run into it is refused at once. A file in ``--out`` counts as "ours" when the model card
it carries (ONNX metadata, ``.json`` beside an engine, a calibration cache's key) names the same
``source_sha256`` as the current source: those may be replaced; others only with ``--force``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from calib.cache import key_path
from export.names import CALIB_CACHE_SUFFIX, ENGINE_SUFFIX, IR_SUFFIX, IR_WEIGHTS_SUFFIX, output_names
from runtime.common.errors import ExportError
from runtime.card import CardError, ModelCard, card_path_for
from runtime.common.files import remove_stale_temps

STAGING_PREFIX = ".staging-"  # the staging folder inside --out (run_staged)

log = logging.getLogger("export.build_engine")


@dataclass
class Written:
    """What stages wrote: staged files (moved into --out at the end), graphs by kind
    (``fp32``, ``fp32.plugin``, ``fp16``, ``int8``, ``int8.cache``, ...) and notes for the report."""

    files: list[Path] = field(default_factory=list)
    graphs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quantization: dict = field(default_factory=dict)  # the INT8 choice (export.int8_choice), when made

    def __iadd__(self, other: "Written") -> "Written":
        self.files += other.files
        self.graphs.update(other.graphs)
        self.notes += other.notes
        self.quantization = other.quantization or self.quantization
        return self


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@contextlib.contextmanager
def stage(name: str):
    """Log a stage with its time and the size of the files it reports (``files.append(path)``);
    a failure is logged with the stage name and re-raised."""
    files: list[Path] = []
    t0 = time.perf_counter()
    log.info("[%s] ...", name)
    try:
        yield files
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        level = logging.DEBUG if isinstance(e, user_errors()) else logging.ERROR
        log.log(level, "[%s] failed after %.1fs: %s", name, time.perf_counter() - t0, first)
        raise
    sizes = ", ".join(f"{p.name} {human_size(p.stat().st_size)}" for p in files if p.is_file())
    log.info("[%s] done in %.1fs%s", name, time.perf_counter() - t0, f": {sizes}" if sizes else "")


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a user's input causes (a command reports each in one line, exit 2); anything
    else is a bug. OSError: read-only, no permission, disk full, ..."""
    errors: list[type[BaseException]] = [ExportError, CardError, OSError]
    ckpt = sys.modules.get("tsi.checkpoint")  # only raised once imported (it imports torch)
    if ckpt is not None:
        errors.append(ckpt.CheckpointError)
    return tuple(errors)


def source_of(path: Path) -> str | None:
    """The ``source_sha256`` an existing output of this tool records (None: not ours / unreadable)."""
    try:
        if path.suffix == ".onnx":
            from export.onnx_export import read_card_from_onnx

            return read_card_from_onnx(path).source_sha256 or None
        if path.name.endswith(CALIB_CACHE_SUFFIX):
            return json.loads(key_path(path).read_text())["card"]["source_sha256"] or None
        if path.name.endswith(key_path(Path(CALIB_CACHE_SUFFIX)).name):
            return json.loads(path.read_text())["card"]["source_sha256"] or None
        if path.suffix in (ENGINE_SUFFIX, IR_SUFFIX, IR_WEIGHTS_SUFFIX):  # the card beside them
            return ModelCard.load(card_path_for(path)).source_sha256 or None
        if path.suffix == ".json":
            return ModelCard.load(path).source_sha256 or None
    except (ExportError, CardError, OSError, KeyError, TypeError, ValueError):
        return None
    return None


def check_out(out: Path, name: str, source_sha: str, *, force: bool, keep: Path | None = None) -> None:
    """Refuse to replace files in ``out`` that another source made (unless ``force``)."""
    foreign = []
    for file_name in output_names(name):
        p = out / file_name
        if p.exists() and (keep is None or p.resolve() != keep.resolve()) and source_of(p) != source_sha:
            foreign.append(p)
    if foreign and not force:
        raise ExportError(f"{out} holds {', '.join(p.name for p in foreign)} made from another source "
                          "(or not by this tool); pass --force to replace, or choose another --out")


def finalize(staged: list[Path], out: Path, keep: Path | None = None) -> list[Path]:
    """Move the staged files (and folders) into ``out``, each move an atomic rename within ``out``'s
    file system (the staging folder lives inside ``out``); files readable as the umask allows (some
    writers create them owner-only). A staged folder replaces an earlier one of the same name (ours:
    an unfinished demo calibration set), which is moved aside into the staging folder first."""
    out.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    moved = []
    for src in staged:
        dst = out / src.name
        if keep is not None and dst.resolve() == keep.resolve():
            continue
        if src.is_dir():
            if dst.is_dir():
                os.replace(dst, src.with_name(src.name + ".old"))
        else:
            os.chmod(src, 0o666 & ~umask)
        os.replace(src, dst)
        moved.append(dst)
    return moved


def run_staged(out: Path, build: Callable[[Path], tuple], keep: Path | None = None) -> tuple[tuple, list[Path]]:
    """``build(staging folder)`` -> ``(Written, ...)``, then its files moved into ``out``
    (:func:`finalize`); returns (what ``build`` returned, the paths in ``out``). On a failure the
    staging folder is removed and so are the folders this run made: ``out`` is left as it was."""
    made = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    stg = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))  # same file system as the outputs
    written: list[Path] = []
    try:
        result = build(stg)
        written = finalize(result[0].files, out, keep)
    finally:
        shutil.rmtree(stg, ignore_errors=True)
        if not written:  # failed: leave no folder this run created
            for p in made:
                try:
                    p.rmdir()
                except OSError:
                    break
    return result, written


@contextlib.contextmanager
def claim_out(out: Path, names: list[str] = ()):
    """Hold ``out`` (the --out folder) for a whole build: a second run into it is refused at once
    with one line, and the first's files stay intact. The lock is an advisory ``flock`` on the
    folder itself (as :func:`runtime.common.files.exclusive` takes one beside a file): nothing is
    left in or beside ``--out``, and the kernel releases it however the process ends (``kill -9``
    included). Checked first: ``out`` and the folders above it are folders and writable. Once held,
    what an interrupted run left is removed: its staging folders and the temporaries of ``names``
    (files in ``out``). On a failure the folders this run made are removed."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ExportError(f"--out {out}: {p} is a file, not a folder")
            break
    made = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        if not os.access(out, os.W_OK):
            os.close(fd)
            raise PermissionError(13, os.strerror(13))
    except OSError as e:
        raise ExportError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(out).st_ino:  # a failed run removed the folder we opened
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        raise ExportError(f"--out {out} is being built by another run now; wait for it to finish or "
                          "choose another --out") from None
    ok = False
    try:
        for stale in out.glob(STAGING_PREFIX + "*"):
            log.info("removing %s, left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)
        for name in names:
            remove_stale_temps(out / name)
        yield
        ok = True
    finally:
        if not ok:  # still held: no other run uses these folders
            for p in made:
                try:
                    p.rmdir()
                except OSError:
                    break
        os.close(fd)  # releases the lock
