"""Clip datasets: (clip, label) with clip float32 (T, 3, S, S), or (views, T, 3, S, S) multi-view.

    ds = build_dataset("folder", "data/synth", card=card, split="train", mode="train")
    clip, label = ds[0]

Clips cover the card's ``span_frames`` (0: the whole video), as the live runtime's window does
(:mod:`runtime.sampling`): a random window of a longer video in training, the centred one in testing.
``mode="train"``: TSN random segment sampling + :class:`~tsi.data.transforms.TrainTransform`;
the randomness of sample i in epoch e comes from ``np.random.default_rng([seed, e, i])``, so it does
not depend on the DataLoader's worker count and a resumed run sees the same clips (call
:meth:`ClipDataset.set_epoch` each epoch, before the workers start).
``mode="test"``: ``clips`` evenly offset clips (1 = centre sampling) x ``crops`` (1 = centre crop by
``FramePreprocessor``, 3 = the 30-view protocol's crops); more than one view stacks them, clip-major.
``mode="test30"`` is the paper's 30-view protocol: ``mode="test", clips=10, crops=3``.

``mix_background=M`` (training only; 0 = off) blends into every frame of a training clip one
static frame of another training video, cropped as training crops, with a weight drawn from
U(0, M) per clip (Wang et al., "Removing the Background by Adding the Background", CVPR 2021, with
the added frame from another video): the clip's motion is untouched -- the added image does not
move -- while its appearance is no longer its own, so a small dataset cannot be memorised by its
backgrounds. Its draws come after the clip's own, so a run without it sees the same clips.

A video that cannot be decoded is skipped with a warning and remembered: ``__getitem__`` returns the
next decodable sample instead, so a DataLoader never dies on one bad file; when every sample fails it
raises. Undecodable are also: a file whose name is not UTF-8 (marked at construction: it never
reaches OpenCV), a frame folder whose images change size inside the clip, and a decoder error that
surfaces as ``cv2.error``. A sample served by another one is counted in ``replaced`` (an evaluation
then scores that other video twice), and :meth:`ClipDataset.unreadable_classes` finds, before any
training, the classes none of whose videos decodes. The "bad" flags live in shared memory, so with forked DataLoader workers (the Linux default)
``skipped`` / ``skipped_files`` in the main process count what the workers met; with spawned workers
each worker keeps its own flags.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.card import ModelCard
from runtime.preprocess import resized_size
from tsi.data import formats
from tsi.data.formats import DatasetFormatError, Sample, unusable_name
from runtime.common.video import VideoDecodeError, read_frames, read_sampled
from runtime.sampling import span_test_indices, span_train_indices
from tsi.data.transforms import TSN_SCALES, TestTransform, ThreeCropTransform, TrainTransform

log = logging.getLogger(__name__)

FORMATS = ("folder", "list", "ssv2", "kinetics", "ucf101", "hmdb51", "jester")
MODES = ("train", "test", "test30")


class ClipDataset(Dataset):
    """Samples (path, label) -> augmented or test clips, as the model card says."""

    def __init__(self, samples: Sequence[Sample], classes: Sequence[str], *, card: ModelCard | None,
                 mode: str = "train", clips: int = 1, crops: int = 1, flip: bool = False,
                 flip_map: Mapping[int, int] | None = None, seed: int = 0, name: str = "dataset",
                 missing: Sequence[str] = (), scales: Sequence[float] = TSN_SCALES,
                 mix_background: float = 0.0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (got {mode!r})")
        if mode == "test30":
            if (clips, crops) != (1, 1):
                raise ValueError("mode='test30' fixes 10 clips x 3 crops; do not pass clips/crops with it")
            mode, clips, crops = "test", 10, 3
        if crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3 (got {crops})")
        if clips < 1:
            raise ValueError(f"clips must be >= 1 (got {clips})")
        if mode == "train" and (clips, crops) != (1, 1):
            raise ValueError("multi-view (clips/crops > 1) is a test protocol; use mode='test'")
        if mode == "test" and (flip or flip_map):
            raise ValueError("flip / flip_map are training augmentation; mode='test' does not flip")
        if not 0.0 <= mix_background < 1.0:
            raise ValueError(f"mix_background must be in [0, 1) (got {mix_background})")
        if mode == "test" and mix_background:
            raise ValueError("mix_background is training augmentation; mode='test' does not mix")
        self.mix_background = float(mix_background)
        self.samples = list(samples)
        self.classes = tuple(classes)
        self.card = card
        self.mode, self.clips, self.crops = mode, clips, crops
        self.seed, self.epoch, self.name = int(seed), 0, name
        self.missing_files = list(missing)
        self._bad = mp.RawArray("b", max(1, len(self.samples)))  # shared with forked workers
        self._replaced = mp.RawArray("b", max(1, len(self.samples)))  # index served by another sample
        unusable = [i for i, s in enumerate(self.samples) if unusable_name(s.path)]
        for i in unusable:
            self._bad[i] = 1
        if unusable and card is not None:  # (a labels-only probe reads no video: no word)
            log.warning("%s: skipping %d video(s) whose file names are not UTF-8 (OpenCV cannot open "
                        "them; rename them), e.g. %s", name, len(unusable),
                        ascii(str(self.samples[unusable[0]].path)))
        self._train_tf = self._test_tf = self._crop_tf = None
        if card is not None:
            if card.labels and tuple(card.labels) != self.classes:
                log.warning("%s: the card's %d labels differ from the dataset's %d classes",
                            name, len(card.labels), len(self.classes))
            if mode == "train":
                self._train_tf = TrainTransform(card, flip=flip, flip_map=flip_map, scales=scales)
            elif crops == 3:
                self._crop_tf = ThreeCropTransform(card)
            else:
                self._test_tf = TestTransform(card)

    # -- bookkeeping -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    @property
    def views(self) -> int:
        return self.clips * self.crops

    @property
    def skipped(self) -> int:
        """Videos found undecodable so far (each counted once)."""
        return bytes(self._bad)[: len(self.samples)].count(1)

    @property
    def skipped_files(self) -> list[str]:
        return [str(self.samples[i].path) for i in range(len(self.samples)) if self._bad[i]]

    @property
    def replaced(self) -> int:
        """Samples served by another (decodable) sample so far, because their own video was not."""
        return bytes(self._replaced)[: len(self.samples)].count(1)

    def replaced_classes(self) -> dict[str, int]:
        """{class: samples of it served by another sample's video}, for the run's report."""
        out: dict[str, int] = {}
        for i in range(len(self.samples)):
            if self._replaced[i]:
                name = self.classes[self.samples[i].label]
                out[name] = out.get(name, 0) + 1
        return out

    def unreadable_classes(self) -> list[str]:
        """Classes that have samples but none whose first frame decodes. Tries each class's samples
        in order until one decodes (a healthy dataset costs one frame per class); the undecodable
        ones are marked and skipped from then on, like those found during an epoch."""
        by_class: dict[int, list[int]] = {}
        for i, s in enumerate(self.samples):
            by_class.setdefault(s.label, []).append(i)
        dead = []
        for label, indices in sorted(by_class.items()):
            if not any(self._probe(i) for i in indices):
                dead.append(self.classes[label])
        return dead

    def _probe(self, j: int) -> bool:
        if self._bad[j]:
            return False
        try:
            read_frames(self.samples[j].path, [0])
            return True
        except (VideoDecodeError, cv2.error) as e:
            self._bad[j] = 1
            log.warning("%s: skipping undecodable video (%s)", self.name, _why(self.samples[j].path, e))
            return False

    def set_epoch(self, epoch: int) -> None:
        """Reseed the training augmentation for ``epoch`` (call before creating the loader)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict[str, Any]:
        # spawned workers receive a pickled copy: shared memory cannot travel, a private copy does
        state = self.__dict__.copy()
        state["_bad"] = bytearray(bytes(self._bad))
        state["_replaced"] = bytearray(bytes(self._replaced))
        return state

    # -- loading ---------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.card is None:
            raise RuntimeError(f"{self.name}: built without a model card (labels only); no clips")
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} samples")
        index = int(index) % n
        for attempt in range(n):
            j = (index + attempt) % n
            if self._bad[j]:
                continue
            try:
                item = self._load(j, index)
            except (VideoDecodeError, cv2.error) as e:
                self._mark_bad(j, e)
                continue
            if j != index:
                self._replaced[index] = 1
            return item
        raise RuntimeError(f"{self.name}: all {n} videos failed to decode, e.g. {self.skipped_files[:3]}")

    def _mark_bad(self, j: int, e: Exception) -> None:
        """Sample ``j`` did not decode: skipped from now on, with one warning."""
        self._bad[j] = 1
        log.warning("%s: skipping undecodable video (%s)", self.name, _why(self.samples[j].path, e))

    def _read(self, path: Path, pick) -> list[np.ndarray]:
        why = unusable_name(path)
        if why:  # never reaches OpenCV: it would crash on the name
            raise VideoDecodeError(ascii(str(path)), why)
        frames, _ = read_sampled(path, pick)
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise VideoDecodeError(path, f"its frames change size inside the clip ({sorted(sizes)[:2]})")
        return frames

    def _load(self, j: int, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[j]
        frames_t, span = self.card.frames, self.card.span_frames
        if self.mode == "train":
            rng = np.random.default_rng([self.seed, self.epoch, index])
            frames = self._read(sample.path, lambda n: span_train_indices(n, frames_t, span, rng=rng))
            clip, label = self._train_tf(frames, sample.label, rng=rng)
            return (self._mix(clip, j, rng) if self.mix_background else clip), label
        frames = self._read(sample.path, lambda n: span_test_indices(n, frames_t, span, self.clips).reshape(-1))
        views = []
        for c in range(self.clips):
            clip = frames[c * frames_t : (c + 1) * frames_t]
            views.append(self._crop_tf(clip) if self.crops == 3 else self._test_tf(clip)[None])
        out = torch.cat(views)  # (clips * crops, T, 3, S, S), clip-major
        return (out[0] if self.views == 1 else out), sample.label

    def _mix(self, clip: torch.Tensor, j: int, rng: np.random.Generator) -> torch.Tensor:
        """``clip`` with the first frame of another training video (not ``j``) blended into every
        frame at a weight from U(0, mix_background); unchanged when that video does not decode
        (it is marked bad and skipped from then on, as in an epoch)."""
        n = len(self.samples)
        if n < 2:
            return clip
        k = int(rng.integers(n - 1))
        k += k >= j
        lam = float(rng.uniform(0.0, self.mix_background))
        if self._bad[k]:
            return clip
        try:
            frame = self._read(self.samples[k].path, lambda _n: [0])[0]
        except (VideoDecodeError, cv2.error) as e:
            self._mark_bad(k, e)
            return clip
        w, h = resized_size(frame.shape[1], frame.shape[0], self.card)
        still = self._train_tf.apply([frame], self._train_tf.sample_params(w, h, rng))
        return clip.mul_(1.0 - lam).add_(still, alpha=lam)


def _why(path: Path, e: Exception) -> str:
    if isinstance(e, cv2.error):  # a decoder error surfacing as an OpenCV exception
        return f"{path}: OpenCV error: {str(e).strip().splitlines()[-1]}"
    return str(e)


# -- builder ---------------------------------------------------------------------------------------
def resolve_flip_map(flip_map: Mapping | str | None, classes: Sequence[str]) -> dict[int, int] | None:
    """{label: label} as names or indices, a JSON string or a JSON file -> {index: index}."""
    if flip_map is None or flip_map == {}:
        return None
    if isinstance(flip_map, str):
        text = Path(flip_map).read_text(encoding="utf-8") if os.path.isfile(flip_map) else flip_map
        try:
            flip_map = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"flip map is neither a JSON file nor JSON text: {e}") from None
    index = {name: i for i, name in enumerate(classes)}

    def to_idx(x: Any) -> int:
        if isinstance(x, int) or (isinstance(x, str) and x.isdigit() and x not in index):
            if not 0 <= int(x) < len(classes):
                raise ValueError(f"flip map label {x} outside 0..{len(classes) - 1}")
            return int(x)
        if x not in index:
            raise ValueError(f"flip map label {x!r} is not a class")
        return index[x]

    return {to_idx(a): to_idx(b) for a, b in dict(flip_map).items()}


def find_samples(kind: str, root: Path, *, split: str, list_file: str | None = None,
                 labels_file: str | None = None, video_root: str | None = None,
                 val_fraction: float = 0.2, split_id: int = 1) -> formats.Found:
    """Dispatch to the layout readers of :mod:`tsi.data.formats`."""
    lst = Path(list_file) if list_file else None
    if lst is not None and not (lst.is_file() or (kind == "hmdb51" and lst.is_dir())):
        raise DatasetFormatError(f"list file not found: {lst}")
    if kind == "folder":
        return formats.folder_samples(root, split, labels_file=labels_file, val_fraction=val_fraction)
    if kind == "list":
        if lst is None:
            raise DatasetFormatError("the list format needs a list file (list_file=...)")
        return formats.list_samples(root, lst, labels_file=labels_file)
    if kind == "ssv2":
        return formats.ssv2_samples(root, split, list_file=lst, labels_file=labels_file,
                                    video_root=Path(video_root) if video_root else None)
    if kind == "kinetics":
        return formats.kinetics_samples(root, split, list_file=lst, labels_file=labels_file)
    if kind == "ucf101":
        return formats.ucf101_samples(root, split, list_file=lst, labels_file=labels_file, split_id=split_id)
    if kind == "hmdb51":
        return formats.hmdb51_samples(root, split, list_file=lst, labels_file=labels_file, split_id=split_id)
    if kind == "jester":
        return formats.jester_samples(root, split, list_file=lst, labels_file=labels_file,
                                      video_root=Path(video_root) if video_root else None)
    raise ValueError(f"unknown dataset format {kind!r}; one of {FORMATS}")


def build_dataset(kind: str, root: str | os.PathLike, *, card: ModelCard | None = None,
                  split: str = "train", mode: str = "train", list_file: str | None = None,
                  labels_file: str | None = None, video_root: str | None = None,
                  clips: int = 1, crops: int = 1, flip: bool = False,
                  flip_map: Mapping | str | None = None, seed: int = 0, val_fraction: float = 0.2,
                  labels_only: bool = False, split_id: int = 1,
                  scales: Sequence[float] = TSN_SCALES, mix_background: float = 0.0) -> ClipDataset:
    """A :class:`ClipDataset` of one split of a dataset in layout ``kind`` (see :data:`FORMATS`).

    ``labels_only=True`` allows ``card=None``: the dataset then only answers ``classes`` and
    ``len`` (used to build the model before its card exists).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetFormatError(f"dataset root does not exist: {root}")
    if card is None and not labels_only:
        raise ValueError("build_dataset needs the model card (card=...) unless labels_only=True")
    samples, classes, missing = find_samples(kind, root, split=split, list_file=list_file,
                                             labels_file=labels_file, video_root=video_root,
                                             val_fraction=val_fraction, split_id=split_id)
    name = f"{kind}:{root.name}/{split}"
    if missing:
        log.warning("%s: %d annotated videos not found on disk, left out (e.g. %s)",
                    name, len(missing), ", ".join(missing[:3]))
    if not samples:
        raise DatasetFormatError(f"{name}: no videos found under {root}")
    ds = ClipDataset(samples, classes, card=card, mode=mode, clips=clips, crops=crops, flip=flip,
                     flip_map=resolve_flip_map(flip_map, classes), seed=seed, scales=scales,
                     name=name, missing=missing, mix_background=mix_background)
    log.info("%s: %d videos, %d classes, mode %s, %d view(s)", name, len(ds), len(classes), mode, ds.views)
    return ds
