"""Dataset layouts -> a list of samples (path, label) and the class names.

* ``folder``: ``root/<class>/<video file or frame folder>``, class names sorted -> labels 0..K-1.
  A split lives in ``root/train/<class>`` and ``root/val/<class>`` (the synthetic generator's
  layout); a flat ``root/<class>`` is split deterministically by a hash of each file's path
  (:func:`hash_split`). The validation split uses the training split's classes.
* ``list``: a text file of ``path label`` or ``path num_frames label`` lines (TSN style), paths
  relative to ``root``; labels are integers or class names of the labels file.
* ``ssv2``: Something-Something v2 -- labels JSON ``{name: "idx"}``, a train/validation JSON list of
  ``{"id", "template"}`` (``[something]`` -> ``something`` gives the label name), videos
  ``<root>/<id>.webm`` or frame folders ``<root>/<id>/``.
* ``kinetics``: Kinetics CSV ``label,youtube_id,time_start,time_end,split`` -> videos
  ``<root>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (or ``<youtube_id>.mp4``).
* ``ucf101``: the official ``classInd.txt`` / ``trainlist0N.txt`` / ``testlist0N.txt``.
* ``hmdb51``: the official ``testTrainMulti_7030_splits/<class>_test_splitN.txt`` (tags 0/1/2).
* ``jester``: 20BN-Jester's ``jester-v1-labels.csv`` and ``jester-v1-{train,validation}.csv``
  (``id;label``).

Wherever a list names a video file ``x.avi`` that is absent, its frame folder ``x/`` (as
``tsi.data.extract`` writes it) is taken instead.

Every reader returns ``(samples, classes, missing)``; ``missing`` lists annotated videos not found
on disk (left out, with one warning), common with Kinetics downloads.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from runtime.common.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, natural_key
from tsi.cli import UsageError

log = logging.getLogger(__name__)

SPLIT_DIRS = {"train": ("train", "training"), "val": ("val", "validation", "valid"), "test": ("test",)}
SSV2_LABELS = ("something-something-v2-labels.json", "labels.json")
SSV2_LISTS = {"train": ("something-something-v2-train.json", "train.json"),
              "val": ("something-something-v2-validation.json", "validation.json", "val.json"),
              "test": ("something-something-v2-test.json", "test.json")}
KINETICS_LISTS = {"train": ("train.csv",), "val": ("val.csv", "validate.csv", "validation.csv"),
                  "test": ("test.csv",)}


class DatasetFormatError(UsageError):
    """An annotation file or folder layout that cannot be read; the message names it."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    num_frames: int = 0  # from a list file when it gives one; 0 = unknown (counted on read)


Found = tuple[list[Sample], list[str], list[str]]


def _split_key(split: str) -> str:
    for key, names in SPLIT_DIRS.items():
        if split == key or split in names:
            return key
    raise DatasetFormatError(f"unknown split {split!r}: use train, val or test")


def _first_existing(root: Path, names: tuple[str, ...], what: str) -> Path:
    for base in (root, root / "annotations", root / "labels"):
        for name in names:
            if (base / name).is_file():
                return base / name
    raise DatasetFormatError(f"no {what} found in {root} (looked for {', '.join(names)}); pass it explicitly")


def load_labels(path: str | os.PathLike) -> list[str]:
    """Class names from a labels file: SSv2 JSON ``{name: "idx"}``, a JSON list, or one per line.
    A file that is not UTF-8, not valid JSON, or names a class twice is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"labels file not found: {path}")
    text = read_text(path, "labels file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"labels file {path}: not valid JSON ({e})") from None
        except ValueError as e:  # a name given twice (the hook)
            raise DatasetFormatError(f"labels file {path}: {e}") from None
        if isinstance(data, dict):
            try:
                by_idx = sorted((int(v), k) for k, v in data.items())
            except (TypeError, ValueError):
                raise DatasetFormatError(f"labels file {path}: every value must be a class index") from None
            if [i for i, _ in by_idx] != list(range(len(by_idx))):
                raise DatasetFormatError(f"{path}: label indices are not 0..{len(by_idx) - 1}")
            return [k for _, k in by_idx]
        if isinstance(data, list):
            names = [str(x) for x in data]
        else:
            raise DatasetFormatError(f"{path}: expected a JSON object or list, got {type(data).__name__}")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DatasetFormatError(f"labels file {path}: duplicate class names {twice[:5]}")
    return names


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"duplicate class names {twice[:5]}")
    return dict(pairs)


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file (a BOM tolerated); another encoding is refused in one line naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{what} {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def hash_split(rel_path: str, val_fraction: float) -> str:
    """``train`` or ``val`` for one file, by a stable hash of its path (same answer on every run).
    The path's bytes as the file system holds them: a name that is not UTF-8 hashes too."""
    key = rel_path.encode("utf-8", "surrogateescape")
    return "val" if zlib.crc32(key) % 10_000 < val_fraction * 10_000 else "train"


def unusable_name(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be handed to OpenCV, or None: a name that is not valid UTF-8 (Python
    keeps its bytes as surrogates, which OpenCV's bindings cannot convert: a crash, not an error)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "its file name is not valid UTF-8 (OpenCV cannot open it); rename it"
    return None


def _entries(class_dir: Path) -> list[Path]:
    out = []
    for p in class_dir.iterdir():
        if p.name.startswith("."):  # hidden: e.g. a temporary file of an interrupted writer
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            out.append(p)
        elif p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
            out.append(p)
    return sorted(out, key=lambda p: natural_key(p.name))


def _class_dirs(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_samples(root: Path, split: str, *, labels_file: str | None = None,
                   val_fraction: float = 0.2) -> Found:
    """``root/<split>/<class>/...`` or, without split folders, ``root/<class>/...`` hash-split."""
    key = _split_key(split)
    split_dirs = {k: next((root / n for n in names if (root / n).is_dir()), None)
                  for k, names in SPLIT_DIRS.items()}
    if split_dirs[key] is not None:
        base, flat = split_dirs[key], False
        class_source = split_dirs["train"] or base
    elif not any(split_dirs.values()) and root.is_dir():
        if key == "test":
            raise DatasetFormatError(f"{root}: no test/ folder and a flat layout has no test split")
        base, flat, class_source = root, True, root
        log.info("%s: no split folders; holding out %.0f%% of each class by path hash as val",
                 root, 100 * val_fraction)
    else:
        raise DatasetFormatError(f"{root}: no {SPLIT_DIRS[key][0]}/ folder for split {split!r}")
    classes = load_labels(labels_file) if labels_file else _class_dirs(class_source)
    if not classes:
        raise DatasetFormatError(f"{class_source}: no class folders")
    unknown = sorted(set(_class_dirs(base)) - set(classes))
    if unknown:
        raise DatasetFormatError(f"{base}: class folder(s) {unknown[:5]} are not among the "
                                 f"{len(classes)} training classes")
    samples = []
    for label, name in enumerate(classes):
        if not (base / name).is_dir():
            continue
        for p in _entries(base / name):
            if flat and hash_split(f"{name}/{p.name}", val_fraction) != key:
                continue
            samples.append(Sample(p, label))
    return samples, classes, []


def list_samples(root: Path, list_file: Path, *, labels_file: str | None = None) -> Found:
    """``path label`` or ``path num_frames label`` lines; ``#`` comments and blank lines skipped."""
    classes = load_labels(labels_file) if labels_file else None
    rows = []
    for n, line in enumerate(read_text(list_file, "list file").splitlines(), 1):
        tok = line.split()
        if not tok or tok[0].startswith("#"):
            continue
        if len(tok) >= 3 and tok[-2].isdigit():
            path, frames, label = " ".join(tok[:-2]), int(tok[-2]), tok[-1]
        elif len(tok) >= 2:
            path, frames, label = " ".join(tok[:-1]), 0, tok[-1]
        else:
            raise DatasetFormatError(f"{list_file}:{n}: expected 'path label' or 'path num_frames label'")
        if label.lstrip("-").isdigit():
            idx = int(label)
        elif classes is not None and label in classes:
            idx = classes.index(label)
        else:
            raise DatasetFormatError(f"{list_file}:{n}: label {label!r} is not an integer"
                                     + ("" if classes is None else " nor a class of the labels file"))
        rows.append((path, frames, idx, n))
    if classes is None:
        classes = [str(i) for i in range(max((r[2] for r in rows), default=-1) + 1)]
    samples, missing = [], []
    for path, frames, idx, n in rows:
        if not 0 <= idx < len(classes):
            raise DatasetFormatError(f"{list_file}:{n}: label {idx} outside 0..{len(classes) - 1}")
        full = root / path
        if full.exists():
            samples.append(Sample(full, idx, frames))
        else:
            missing.append(str(full))
    return samples, classes, missing


def ssv2_label_name(entry: dict) -> str:
    """The class name of one SSv2 annotation: the template without brackets."""
    name = entry.get("template", entry.get("label"))
    if name is None:
        raise DatasetFormatError(f"SSv2 entry {entry.get('id')!r} has no template/label (test split?)")
    return name.replace("[", "").replace("]", "")


def ssv2_samples(root: Path, split: str, *, list_file: Path | None = None,
                 labels_file: str | None = None, video_root: Path | None = None) -> Found:
    key = _split_key(split)
    labels_path = Path(labels_file) if labels_file else _first_existing(root, SSV2_LABELS, "SSv2 labels JSON")
    classes = load_labels(labels_path)
    index = {name: i for i, name in enumerate(classes)}
    list_file = list_file or _first_existing(root, SSV2_LISTS[key], f"SSv2 {key} annotation JSON")
    try:
        entries = json.loads(read_text(list_file, "SSv2 annotation file"))
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"SSv2 annotation file {list_file}: not valid JSON ({e})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e for e in entries):
        raise DatasetFormatError(f"SSv2 annotation file {list_file}: expected a JSON list of {{\"id\", \"template\"}}")
    videos = video_root or root
    samples, missing = [], []
    for e in entries:
        name = ssv2_label_name(e)
        if name not in index:
            raise DatasetFormatError(f"{list_file}: label {name!r} of video {e.get('id')} is not in {labels_path}")
        vid = str(e["id"])
        path = next((p for p in (videos / f"{vid}.webm", videos / f"{vid}.mp4", videos / vid)
                     if p.exists()), None)
        if path is None:
            missing.append(str(videos / f"{vid}.webm"))
        else:
            samples.append(Sample(path, index[name]))
    return samples, classes, missing


def kinetics_path(root: Path, label: str, youtube_id: str, start: int, end: int, split: str) -> Path | None:
    """The first existing candidate file of one Kinetics clip, or None."""
    stem = f"{youtube_id}_{start:06d}_{end:06d}"
    dirs = [root / label, root / label.replace(" ", "_")]
    dirs += [root / s / d.name for s in SPLIT_DIRS[split] for d in dirs[:2]]
    candidates = [d / f"{stem}.mp4" for d in dirs] + [root / f"{stem}.mp4", root / f"{youtube_id}.mp4"]
    return next((p for p in candidates if p.is_file()), None)


def kinetics_samples(root: Path, split: str, *, list_file: Path | None = None,
                     labels_file: str | None = None) -> Found:
    key = _split_key(split)
    list_file = list_file or _first_existing(root, KINETICS_LISTS[key], f"Kinetics {key} CSV")
    rows = list(csv.DictReader(io.StringIO(read_text(list_file, "Kinetics CSV"), newline="")))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise DatasetFormatError(f"{list_file}: expected a CSV with columns {sorted(need)}")
    classes = load_labels(labels_file) if labels_file else sorted({r["label"] for r in rows})
    index = {name: i for i, name in enumerate(classes)}
    samples, missing = [], []
    for r in rows:
        if r["label"] not in index:
            raise DatasetFormatError(f"{list_file}: label {r['label']!r} is not a known class")
        start, end = int(float(r["time_start"])), int(float(r["time_end"]))
        path = kinetics_path(root, r["label"], r["youtube_id"], start, end, key)
        if path is None:
            missing.append(f"{r['label']}/{r['youtube_id']}_{start:06d}_{end:06d}.mp4")
        else:
            samples.append(Sample(path, index[r["label"]]))
    return samples, classes, missing


# -- official split files of UCF101, HMDB51 and Jester, read as they come ----------------------------
UCF101_DIRS = ("", "ucfTrainTestlist", "annotations", "splits")
HMDB51_DIRS = ("testTrainMulti_7030_splits", "", "annotations", "splits")
JESTER_LABELS = ("jester-v1-labels.csv",)
JESTER_LISTS = {"train": ("jester-v1-train.csv",), "val": ("jester-v1-validation.csv",),
                "test": ("jester-v1-test.csv",)}
JESTER_VIDEO_DIRS = ("20bn-jester-v1", "")


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines with their numbers; CRLF (UCF101's files) and a BOM tolerated."""
    text = read_text(path, "split file")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def resolve_video(root: Path, rel: str) -> Path | None:
    """The file ``root/rel`` or, when the videos were extracted to frames, the frame folder
    ``root/rel`` without its suffix (``tsi.data.extract``'s layout)."""
    p = root / rel
    if p.exists():
        return p
    folder = p.with_suffix("") if p.suffix.lower() in VIDEO_SUFFIXES else None
    return folder if folder is not None and folder.is_dir() else None


def _find_in(root: Path, dirs: tuple[str, ...], name: str) -> Path | None:
    return next((root / d / name for d in dirs if (root / d / name).is_file()), None)


def ucf101_samples(root: Path, split: str, *, list_file: Path | None = None,
                   labels_file: str | None = None, split_id: int = 1) -> Found:
    """UCF101's ``ucfTrainTestlist``: ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based),
    ``trainlist0N.txt`` (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``, 1-based labels) and
    ``testlist0N.txt`` (paths only: the label is the class folder). ``val`` and ``test`` both read
    the test list (UCF101 has no separate validation split). Paths are relative to ``root``."""
    key = _split_key(split)
    name = f"{'trainlist' if key == 'train' else 'testlist'}{split_id:02d}.txt"
    list_file = list_file or _find_in(root, UCF101_DIRS, name)
    if list_file is None:
        raise DatasetFormatError(f"{root}: no {name} (looked in {', '.join(d or '.' for d in UCF101_DIRS)})")
    ind = Path(labels_file) if labels_file else _find_in(list_file.parent, ("",), "classInd.txt") \
        or _find_in(root, UCF101_DIRS, "classInd.txt")
    if ind is None or not ind.is_file():
        raise DatasetFormatError(f"no classInd.txt beside {list_file} or under {root}")
    by_index = {}
    for n, line in _lines(ind):
        tok = line.split()
        if len(tok) != 2 or not tok[0].isdigit():
            raise DatasetFormatError(f"{ind}:{n}: expected 'index ClassName', got {line!r}")
        by_index[int(tok[0])] = tok[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise DatasetFormatError(f"{ind}: class indices are not 1..{len(by_index)}")
    classes = [by_index[i] for i in range(1, len(by_index) + 1)]
    index = {c: i for i, c in enumerate(classes)}
    samples, missing = [], []
    for n, line in _lines(list_file):
        tok = line.split()
        rel = tok[0]
        folder = rel.replace("\\", "/").split("/")[0]
        if folder not in index:
            raise DatasetFormatError(f"{list_file}:{n}: class folder {folder!r} is not in {ind}")
        label = index[folder]
        if len(tok) >= 2:  # the train lists give the 1-based label too: it must agree
            if not tok[1].isdigit() or int(tok[1]) - 1 != label:
                raise DatasetFormatError(f"{list_file}:{n}: label {tok[1]!r} disagrees with class "
                                         f"{folder!r} (index {label + 1} in {ind.name})")
        path = resolve_video(root, rel)
        if path is None:
            missing.append(str(root / rel))
        else:
            samples.append(Sample(path, label))
    return samples, classes, missing


def hmdb51_samples(root: Path, split: str, *, list_file: Path | None = None,
                   labels_file: str | None = None, split_id: int = 1) -> Found:
    """HMDB51's ``testTrainMulti_7030_splits``: one ``<class>_test_split<N>.txt`` per class, lines
    ``<video>.avi <tag>`` with tag 1 = training, 2 = testing, 0 = unused in that split. Classes are
    the files' class names, sorted; videos ``root/<class>/<video>``. ``list_file`` may name the
    splits folder. ``val`` and ``test`` both read tag 2."""
    key = _split_key(split)
    want = "1" if key == "train" else "2"
    suffix = f"_test_split{split_id}.txt"
    if list_file is not None:
        folder = list_file if list_file.is_dir() else list_file.parent
    else:
        folder = next((root / d for d in HMDB51_DIRS if (root / d).is_dir()
                       and any((root / d).glob(f"*{suffix}"))), None)
    files = sorted(folder.glob(f"*{suffix}")) if folder is not None else []
    if not files:
        raise DatasetFormatError(f"{root}: no HMDB51 split files *{suffix} (testTrainMulti_7030_splits)")
    classes = [f.name[: -len(suffix)] for f in files]
    if labels_file:
        named = load_labels(labels_file)
        if sorted(named) != sorted(classes):
            raise DatasetFormatError(f"{labels_file}: classes differ from the split files' in {folder}")
        classes = named
    index = {c: i for i, c in enumerate(classes)}
    samples, missing = [], []
    for f in files:
        cls = f.name[: -len(suffix)]
        for n, line in _lines(f):
            tok = line.split()
            if len(tok) != 2 or tok[1] not in ("0", "1", "2"):
                raise DatasetFormatError(f"{f}:{n}: expected '<video> <0|1|2>', got {line!r}")
            if tok[1] != want:
                continue
            path = resolve_video(root, f"{cls}/{tok[0]}")
            if path is None:
                missing.append(str(root / cls / tok[0]))
            else:
                samples.append(Sample(path, index[cls]))
    return samples, classes, missing


def jester_samples(root: Path, split: str, *, list_file: Path | None = None,
                   labels_file: str | None = None, video_root: Path | None = None) -> Found:
    """20BN-Jester v1: ``jester-v1-labels.csv`` (one class per line, file order = label order),
    ``jester-v1-train.csv`` / ``-validation.csv`` (``34870;Drumming Fingers``, no header), frame
    folders ``root/20bn-jester-v1/<id>/00001.jpg ...`` (or ``root/<id>``, or a video ``<id>.mp4``).
    The test CSV has ids only and no labels: it cannot be trained or evaluated on."""
    key = _split_key(split)
    labels_path = Path(labels_file) if labels_file else _first_existing(root, JESTER_LABELS, "Jester labels CSV")
    classes = [c for _, c in _lines(labels_path)]
    if len(set(classes)) != len(classes):
        raise DatasetFormatError(f"{labels_path}: duplicate class names")
    index = {c: i for i, c in enumerate(classes)}
    list_file = list_file or _first_existing(root, JESTER_LISTS[key], f"Jester {key} CSV")
    base = video_root or next((root / d for d in JESTER_VIDEO_DIRS if d and (root / d).is_dir()), root)
    samples, missing = [], []
    for n, line in _lines(list_file):
        vid, sep, label = line.partition(";")
        if not sep:
            raise DatasetFormatError(f"{list_file}:{n}: expected 'id;label' (semicolon-separated); the "
                                     "Jester test list has no labels")
        if label not in index:
            raise DatasetFormatError(f"{list_file}:{n}: label {label!r} is not in {labels_path}")
        path = next((p for p in (base / vid, base / f"{vid}.mp4", base / f"{vid}.webm") if p.exists()), None)
        if path is None:
            missing.append(str(base / vid))
        else:
            samples.append(Sample(path, index[label]))
    return samples, classes, missing


def generator_marker(out: Path, marker: str, fmt: str) -> dict | None:
    """The JSON ``out/marker`` of a previous output of the generator whose marker format is ``fmt``;
    None when there is none there (missing, unreadable, not JSON, or another generator's)."""
    try:
        found = json.loads((out / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("format") == fmt else None


def complete_generated(out: Path, splits, classes, written: set[Path], params: dict, marker: str, *,
                       previous: bool) -> None:
    """Finish a generator's folder-format output (``out/<split>/<class>/<class>_*``): after a
    ``previous`` run, remove the videos this run did not write (a larger earlier run's), write
    ``labels.txt`` (the class order of the folder format), then the ``marker`` JSON with
    ``"complete": true`` last, so a half-written folder is recognisable."""
    from runtime.common.files import atomic_write_text

    if previous:
        stale = [p for s in splits for c in classes for p in (out / s / c).glob(f"{c}_*")
                 if p.suffix.lower() in VIDEO_SUFFIXES and p not in written]
        for p in stale:
            p.unlink()
        if stale:
            log.info("removed %d videos of the previous output in %s", len(stale), out)
    atomic_write_text(out / "labels.txt", "\n".join(classes) + "\n")
    params["complete"] = True
    atomic_write_text(out / marker, json.dumps(params, indent=2) + "\n")
