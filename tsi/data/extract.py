"""Videos -> frame folders (one folder of JPEG frames per video), the layout MMAction2 and the TSM
code train Something-Something from:

    python -m tsi.data.extract --src videos/ --out frames/ --short-side 128 --workers 2

Every video under ``--src`` (any depth; .mp4 .avi .webm .mkv .mov .m4v) becomes the folder
``OUT/<its relative path without the suffix>/`` holding ``img_00001.jpg, img_00002.jpg, ...`` (every
frame, 1-based, resized so its short side is ``--short-side``; 0 keeps the size). A class-folder
tree (``train/<class>/x.mp4``) therefore gives the same tree of frame folders, which
``--format folder`` and the ``list`` / split-file readers take wherever they take videos.

* Atomic per video: frames go to a hidden temporary folder beside the target, renamed into place
  when the video is complete; an interrupted run never leaves a half-written frame folder under
  the final name, and the hidden folders of a killed run are removed by the next one.
* Resumable: a video whose folder exists is skipped, so rerunning the command continues.
* Corrupt videos (that open to no frame) are logged, listed in ``OUT/extract_failed.txt`` and
  skipped; they are retried on the next run.
* One run at a time per ``--out``: a second one into the same folder is refused at once (an
  advisory lock beside it, :func:`runtime.common.files.exclusive`).
* ``OUT/extract.json`` records the settings; a rerun with another short side or quality into the
  same folder is refused rather than mixing two resolutions.
* Parallel: ``--workers`` processes, one video each at a time, a progress bar over videos.
* Ctrl-C, SIGTERM and SIGHUP stop it cleanly: the videos in progress are finished (or, if a worker
  is killed, their temporary folders removed on the next run), the failure list written, exit 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import cv2

from runtime.common.files import atomic_write_bytes, atomic_write_text, exclusive, remove_stale_temps
from runtime.common.progress import progress_bar
from runtime.cli import ignore_stop_signals
from runtime.preprocess import resize_short_side
from runtime.common.video import VIDEO_SUFFIXES, VideoDecodeError, iter_video, natural_key
from tsi.cli import UsageError, cli_main, non_negative_int, parser, positive_int
from tsi.data.formats import unusable_name

log = logging.getLogger("tsi.data.extract")

FRAME_NAME = "img_{:05d}.jpg"  # MMAction2's default filename_tmpl, 1-based
MANIFEST = "extract.json"
FAILED = "extract_failed.txt"
TMP_TAG = ".extract-tmp-"


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


def find_videos(src: Path) -> list[Path]:
    """Video files under ``src`` (hidden files and folders skipped), in natural order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames
                if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_SUFFIXES]
    return sorted(out, key=lambda p: natural_key(p.relative_to(src).as_posix()))


def plan(src: Path, out: Path) -> list[Job]:
    """One job per video; two videos that would share a folder (a.mp4 and a.avi) are an error."""
    jobs, seen = [], {}
    for v in find_videos(src):
        rel = v.relative_to(src).with_suffix("")
        if rel in seen:
            raise ValueError(f"{v} and {seen[rel]} would both extract to {out / rel}; rename one")
        seen[rel] = v
        jobs.append(Job(v, out / rel))
    return jobs


def extract_video(src: Path, dst: Path, short_side: int = 0, quality: int = 95) -> int:
    """Write every frame of ``src`` as ``dst/img_00001.jpg ...`` atomically; returns the frame count.
    Raises :class:`VideoDecodeError` for a video that decodes to no frame (nothing is left behind)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}{TMP_TAG}", dir=dst.parent))
    try:
        n = 0
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        for frame in iter_video(src):
            if short_side:
                frame = resize_short_side(frame, short_side)
            n += 1
            if not cv2.imwrite(str(tmp / FRAME_NAME.format(n)), frame, params):
                raise OSError(f"cannot write {tmp / FRAME_NAME.format(n)} (disk full?)")
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, dst)
        return n
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _run_job(job: Job, short_side: int, quality: int) -> tuple[Job, int, str]:
    """Worker side: (job, frames, error message or '')."""
    why = unusable_name(job.src)
    if why:  # never reaches OpenCV: it would crash on the name
        return job, 0, why
    try:
        return job, extract_video(job.src, job.dst, short_side, quality), ""
    except VideoDecodeError as e:
        return job, 0, e.reason
    except cv2.error as e:  # a decoder error surfacing as an OpenCV exception
        return job, 0, f"OpenCV error: {str(e).strip().splitlines()[-1]}"


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers from a clean process, never forked from this one: a fork copies OpenCV's and other
    libraries' thread pools mid-use, and the child can hang on one of their locks (seen here:
    ``cv2.setNumThreads`` in a child forked after OpenCV had decoded in threads)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _worker_init() -> None:
    ignore_stop_signals()  # a worker finishes its current video; the parent decides when to stop
    cv2.setNumThreads(1)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, like Ctrl-C."""
    def handler(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def remove_stale_temporaries(out: Path) -> int:
    """Delete the hidden temporary folders a killed run left under ``out``."""
    stale = [p for p in out.rglob(f".*{TMP_TAG}*") if p.is_dir()] if out.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def check_manifest(out: Path, settings: dict) -> None:
    path = out / MANIFEST
    if not path.is_file():
        if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise FileExistsError(f"{out} is not empty and holds no {MANIFEST} of an earlier extraction; "
                                  "choose an empty or new --out")
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise FileExistsError(f"{path} is not valid JSON; choose another --out") from None
    diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
    if diff:
        what = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items())
        raise FileExistsError(f"{out} was extracted with {what}; use another --out to keep both")


def extract_tree(src: str | os.PathLike, out: str | os.PathLike, *, short_side: int = 0, quality: int = 95,
                 workers: int = 1, progress: bool = True) -> dict:
    """Extract every video under ``src`` into frame folders under ``out`` (see the module doc).
    Returns {"videos", "extracted", "skipped", "failed": [(path, reason)], "frames", "interrupted"}."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ValueError(f"--src {src} is not a folder")
    if short_side < 0 or not 1 <= quality <= 100 or workers < 1:
        raise ValueError(f"need short_side >= 0, 1 <= quality <= 100, workers >= 1 "
                         f"(got {short_side}, {quality}, {workers})")
    settings = {"format": "tsi-frames", "short_side": short_side, "quality": quality,
                "frame_name": FRAME_NAME}
    with exclusive(out):  # a second extraction into OUT now is refused: it would remove our temporaries
        for name in (MANIFEST, FAILED):
            remove_stale_temps(out / name)
        return _extract(src, out, settings, short_side, quality, workers, progress)


def _extract(src: Path, out: Path, settings: dict, short_side: int, quality: int, workers: int,
             progress: bool) -> dict:
    check_manifest(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    if n := remove_stale_temporaries(out):
        log.info("removed %d temporary folder(s) of an interrupted run", n)
    atomic_write_text(out / MANIFEST, json.dumps({**settings, "src": str(src.resolve())}, indent=2) + "\n")
    jobs = plan(src, out)
    todo = [j for j in jobs if not j.dst.is_dir()]
    result = {"videos": len(jobs), "extracted": 0, "skipped": len(jobs) - len(todo), "failed": [],
              "frames": 0, "interrupted": False}
    if result["skipped"]:
        log.info("%d of %d videos already extracted: skipped", result["skipped"], len(jobs))
    bar = progress_bar(total=len(todo), desc="extracting", unit="video", enabled=progress)

    def done(job: Job, frames: int, error: str) -> None:
        if error:
            result["failed"].append((str(job.src), error))
            log.warning("%s: skipped (%s)", ascii(str(job.src))[1:-1], error)
        else:
            result["extracted"] += 1
            result["frames"] += frames
        bar.update()

    try:
        with stop_on_signals():
            if workers == 1:
                for job in todo:
                    done(*_run_job(job, short_side, quality))
            else:
                with ProcessPoolExecutor(workers, initializer=_worker_init, mp_context=_worker_context()) as pool:
                    pending: set[Future] = set()
                    it = iter(todo)
                    try:
                        while True:  # keep 2 jobs per worker queued, no more: a stop is quick
                            while len(pending) < 2 * workers and (job := next(it, None)) is not None:
                                pending.add(pool.submit(_run_job, job, short_side, quality))
                            if not pending:
                                break
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for f in finished:
                                done(*f.result())
                    except KeyboardInterrupt:
                        for f in pending:
                            f.cancel()
                        finished, _ = wait(pending)  # the videos in progress finish
                        for f in finished:
                            if not f.cancelled() and f.exception() is None:
                                done(*f.result())
                        raise
    except KeyboardInterrupt as e:
        result["interrupted"] = True
        log.warning("stopped (%s) after %d of %d videos; rerun the same command to continue",
                    e.args[0] if e.args else "Ctrl-C", result["extracted"], len(todo))
    finally:
        bar.close()
        failed_file = out / FAILED
        if result["failed"]:
            # the paths' own bytes: a name that is not UTF-8 is listed as the file system holds it
            listing = "".join(f"{p}\t{r}\n" for p, r in result["failed"])
            atomic_write_bytes(failed_file, listing.encode("utf-8", "surrogateescape"))
        elif failed_file.exists() and not result["interrupted"]:
            failed_file.unlink()  # an earlier run's failures are all extracted now
    log.info("%d videos: %d extracted (%d frames), %d already there, %d failed%s", len(jobs),
             result["extracted"], result["frames"], result["skipped"], len(result["failed"]),
             f" (listed in {out / FAILED})" if result["failed"] else "")
    return result


def build_parser() -> argparse.ArgumentParser:
    p = parser("tsi-extract", __doc__)
    p.add_argument("--src", required=True, help="folder of videos (searched recursively)")
    p.add_argument("--out", required=True, help="folder of frame folders (mirrors --src)")
    p.add_argument("--short-side", type=non_negative_int, default=0,
                   help="resize frames so the short side is this many pixels (0: keep; e.g. 256 for "
                        "224 inputs, 73 for 64 inputs: the model card's resize_short)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100")
    p.add_argument("--workers", type=positive_int, default=min(4, os.cpu_count() or 1), help="parallel processes")
    return p


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = extract_tree(args.src, args.out, short_side=args.short_side, quality=args.quality,
                              workers=args.workers)
    except ValueError as e:  # extract_tree's own checks of its options
        raise UsageError(str(e)) from None
    return 130 if result["interrupted"] else 0


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-extract")


if __name__ == "__main__":
    sys.exit(main())
