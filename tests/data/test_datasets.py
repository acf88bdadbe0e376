import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor
from tests.data.videos import index_of, write_corrupt, write_frame_folder, write_video
from tsi.data.datasets import build_dataset
from tsi.data.formats import DatasetFormatError, ssv2_label_name
from runtime.common.video import read_frames
from runtime.sampling import multi_clip_indices, segment_indices

T = 4


def make_card(labels) -> ModelCard:
    return ModelCard(arch="t", labels=tuple(labels), frames=T, input_size=32, resize_short=36)


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "ds"
    for split, n in (("train", 2), ("val", 1)):
        for c in ("zoom", "left", "right"):
            for k in range(n):
                write_video(root / split / c / f"{c}_{k}.mp4", 8 + k)
    write_frame_folder(root / "train" / "left" / "frames_clip", 9)  # a frame folder among videos
    return root


def test_folder_format(folder_root):
    card = make_card(["left", "right", "zoom"])
    train = build_dataset("folder", folder_root, card=card, split="train", mode="train")
    val = build_dataset("folder", folder_root, card=card, split="val", mode="test")
    assert train.classes == ("left", "right", "zoom") == val.classes  # sorted names -> labels
    assert len(train) == 7 and len(val) == 3
    assert [s.label for s in val.samples] == [0, 1, 2]
    assert sorted({s.path.parent.name for s in train.samples if s.label == 0}) == ["left"]
    for ds in (train, val):
        clip, label = ds[0]
        assert clip.shape == (T, 3, 32, 32) and clip.dtype == torch.float32 and isinstance(label, int)
    # the test clip is FramePreprocessor on the centre frames of the segments
    for i, sample in enumerate(val.samples):
        frames = read_frames(sample.path)
        pp = FramePreprocessor(card)
        ref = np.stack([pp(frames[j]) for j in segment_indices(len(frames), T, "test")])
        assert np.abs(val[i][0].numpy() - ref).max() <= 1e-6
    # training clips: reproducible by (seed, epoch, index), new each epoch
    a, b = train[3][0], train[3][0]
    train.set_epoch(1)
    assert torch.equal(a, b) and not torch.equal(a, train[3][0])
    # labels only: no card needed
    probe = build_dataset("folder", folder_root, split="train", labels_only=True)
    assert probe.classes == train.classes
    with pytest.raises(RuntimeError, match="without a model card"):
        probe[0]


def test_flat_folder_hash_split(tmp_path):
    root = tmp_path / "flat"
    for c in ("a", "b"):
        for k in range(10):
            write_video(root / c / f"{k}.avi", 5)
    tr = build_dataset("folder", root, split="train", labels_only=True)
    va = build_dataset("folder", root, split="val", labels_only=True, val_fraction=0.3)
    va2 = build_dataset("folder", root, split="val", labels_only=True, val_fraction=0.3)
    assert [s.path for s in va.samples] == [s.path for s in va2.samples]  # stable
    tr3 = build_dataset("folder", root, split="train", labels_only=True, val_fraction=0.3)
    assert not {s.path for s in tr3.samples} & {s.path for s in va.samples}
    assert len(tr3) + len(va) == 20 and len(tr) <= 20


def test_list_format(tmp_path):
    root = tmp_path / "r"
    write_video(root / "v" / "a.mp4", 6)
    write_video(root / "v" / "b.webm", 7)
    write_frame_folder(root / "f" / "c", 8)
    lst = tmp_path / "train.txt"
    lst.write_text("# path [num_frames] label\nv/a.mp4 2\n\nv/b.webm 0\nf/c 8 1\nv/gone.mp4 1\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("x\ny\nz\n")
    ds = build_dataset("list", root, card=make_card("xyz"), list_file=str(lst), labels_file=str(labels),
                       mode="test")
    assert ds.classes == ("x", "y", "z")
    assert [(s.path.name, s.label, s.num_frames) for s in ds.samples] == [("a.mp4", 2, 0), ("b.webm", 0, 0),
                                                                           ("c", 1, 8)]
    assert len(ds.missing_files) == 1 and ds.missing_files[0].endswith("gone.mp4")
    assert [ds[i][1] for i in range(3)] == [2, 0, 1] and ds[2][0].shape == (T, 3, 32, 32)
    # without a labels file the classes are the label numbers
    assert build_dataset("list", root, list_file=str(lst), labels_only=True).classes == ("0", "1", "2")
    with pytest.raises(DatasetFormatError, match="needs a list file"):
        build_dataset("list", root, labels_only=True)


def test_ssv2_format(tmp_path):
    root = tmp_path / "ssv2"
    labels = {"Moving something left": "1", "Pushing something from right to left": "0"}
    (root).mkdir()
    (root / "something-something-v2-labels.json").write_text(json.dumps(labels))
    train = [{"id": "11", "template": "Moving [something] left", "label": "moving cup left"},
             {"id": "12", "template": "Pushing [something] from right to left", "label": "pushing pen ..."},
             {"id": "13", "template": "Moving [something] left", "label": "moving box left"}]
    (root / "something-something-v2-train.json").write_text(json.dumps(train))
    write_video(root / "11.webm", 10)
    write_frame_folder(root / "12", 10, pattern="{:05d}.jpg")  # SSv1-style jpg folder
    ds = build_dataset("ssv2", root, card=make_card(["Pushing something from right to left",
                                                      "Moving something left"]), split="train", mode="train")
    assert ds.classes == ("Pushing something from right to left", "Moving something left")
    assert [(s.path.name, s.label) for s in ds.samples] == [("11.webm", 1), ("12", 0)]
    assert len(ds.missing_files) == 1  # video 13 is not on disk
    assert ds[0][0].shape == ds[1][0].shape == (T, 3, 32, 32)
    assert ssv2_label_name({"id": "1", "template": "Putting [something] into [something]"}) == \
        "Putting something into something"
    with pytest.raises(DatasetFormatError, match="SSv2 val annotation"):
        build_dataset("ssv2", root, split="val", labels_only=True)


def test_kinetics_format(tmp_path):
    root = tmp_path / "k400"
    rows = [("abseiling", "abc", 10, 20), ("zumba", "def", 0, 10), ("abseiling", "ghi", 5, 15),
            ("zumba", "missing", 1, 11)]
    csv = "label,youtube_id,time_start,time_end,split\n" + "".join(
        f"{lab},{yid},{s},{e},train\n" for lab, yid, s, e in rows)
    (root).mkdir()
    (root / "train.csv").write_text(csv)
    write_video(root / "abseiling" / "abc_000010_000020.mp4", 6)
    write_video(root / "zumba" / "def_000000_000010.mp4", 6)
    write_video(root / "ghi.mp4", 6)  # plain <youtube_id>.mp4 fallback
    ds = build_dataset("kinetics", root, card=make_card(["abseiling", "zumba"]), split="train", mode="test")
    assert ds.classes == ("abseiling", "zumba")
    assert [(s.path.name, s.label) for s in ds.samples] == [
        ("abc_000010_000020.mp4", 0), ("def_000000_000010.mp4", 1), ("ghi.mp4", 0)]
    assert ds.missing_files == ["zumba/missing_000001_000011.mp4"]
    assert ds[1][0].shape == (T, 3, 32, 32) and ds[1][1] == 1


def test_corrupt_video_skipped_and_counted(folder_root, caplog):
    bad = write_corrupt(folder_root / "val" / "left" / "aaa_corrupt.mp4")  # sorts first in its class
    card = make_card(["left", "right", "zoom"])
    ds = build_dataset("folder", folder_root, card=card, split="val", mode="test")
    assert ds.samples[0].path == bad and ds.skipped == 0
    clip, label = ds[0]  # falls through to the next decodable sample
    assert label == 0 and torch.equal(clip, ds[1][0])
    assert ds.skipped == 1 and ds.skipped_files == [str(bad)]
    assert "aaa_corrupt.mp4" in caplog.text
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives: a private copy
    assert copy.skipped == 1 and torch.equal(copy[0][0], clip)
    # forked DataLoader workers report what they skipped to the parent
    ds2 = build_dataset("folder", folder_root, card=card, split="val", mode="test")
    batches = list(DataLoader(ds2, batch_size=2, num_workers=2))
    assert sum(len(b[1]) for b in batches) == 4 and ds2.skipped == 1
    # every sample corrupt: a clear error, not an endless loop
    root = folder_root.parent / "allbad"
    for c in ("a", "b"):
        write_corrupt(root / "train" / c / "x.mp4")
    allbad = build_dataset("folder", root, card=make_card("ab"), split="train", mode="train")
    with pytest.raises(RuntimeError, match="all 2 videos failed to decode"):
        allbad[0]


def test_multi_view(folder_root):
    card = make_card(["left", "right", "zoom"])
    ds = build_dataset("folder", folder_root, card=card, split="val", mode="test", clips=2, crops=3)
    clip, _ = ds[0]
    assert clip.shape == (6, T, 3, 32, 32) and ds.views == 6
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch[0].shape == (2, 6, T, 3, 32, 32) and batch[1].tolist() == [0, 1]
    assert build_dataset("folder", folder_root, card=card, split="val", mode="test30")[0][0].shape == \
        (30, T, 3, 32, 32)
    # 10 clips x 1 crop: the clips take the evenly offset indices
    ten = build_dataset("folder", folder_root, card=card, split="val", mode="test", clips=10)
    frames = read_frames(ten.samples[2].path)
    idx = multi_clip_indices(len(frames), T, 10)
    pp = FramePreprocessor(card)
    ref = np.stack([[pp(frames[j]) for j in row] for row in idx])
    assert np.abs(ten[2][0].numpy() - ref).max() <= 1e-6
    assert index_of(frames[idx[9, 3]]) == idx[9, 3]


def test_errors(folder_root, tmp_path):
    card = make_card(["left", "right", "zoom"])
    with pytest.raises(ValueError, match="unknown dataset format"):
        build_dataset("hdf5", folder_root, card=card)
    with pytest.raises(DatasetFormatError, match="does not exist"):
        build_dataset("folder", tmp_path / "nope", card=card)
    with pytest.raises(ValueError, match="needs the model card"):
        build_dataset("folder", folder_root)
    with pytest.raises(ValueError, match="test protocol"):
        build_dataset("folder", folder_root, card=card, clips=10)
    with pytest.raises(ValueError, match="not a class"):
        build_dataset("folder", folder_root, card=card, flip=True, flip_map='{"left": "up"}')
    ds = build_dataset("folder", folder_root, card=card, flip=True, flip_map='{"left": "right"}')
    assert ds._train_tf.flip_map == {0: 1, 1: 0}
    write_video(folder_root / "val" / "extra" / "e.mp4", 4)
    with pytest.raises(DatasetFormatError, match="extra"):
        build_dataset("folder", folder_root, card=card, split="val", mode="test")


def test_unusable_names_and_changing_frame_sizes_are_skipped_like_undecodable_videos(folder_root, caplog):
    """A name that is not UTF-8 never reaches OpenCV (it crashed there); a frame folder whose images
    change size inside a clip (it stopped training with cv2.error) is skipped and reported."""
    import os
    import shutil

    import cv2

    left = folder_root / "val" / "left"
    bad_name = left / os.fsdecode(b"aa_caf\xe9.mp4")  # sorts first in its class
    shutil.copy(left / "left_0.mp4", bad_name)
    sizes = left / "ab_sizes"
    sizes.mkdir()
    for i in range(8):  # wide frames, then narrow ones: a crop of the first misses the others
        cv2.imwrite(str(sizes / f"{i + 1:05d}.jpg"), np.full((48, 200, 3) if i < 4 else (64, 48, 3), 90, np.uint8))
    card = make_card(["left", "right", "zoom"])
    for mode in ("test", "train"):
        ds = build_dataset("folder", folder_root, card=card, split="val", mode=mode)
        assert [s.path.name for s in ds.samples[:3]] == [bad_name.name, "ab_sizes", "left_0.mp4"]
        assert ds.skipped == 1  # the name is refused before any read
        clip, label = ds[0]
        assert label == 0 and ds.skipped == 2 and ds.skipped_files[:2] == [str(bad_name), str(sizes)]
        assert ds.replaced == 1 and ds.replaced_classes() == {"left": 1}
    assert "not UTF-8" in caplog.text and "change size inside the clip" in caplog.text


def test_unreadable_classes_are_found_before_training(folder_root):
    for p in (folder_root / "train" / "zoom").iterdir():
        write_corrupt(p)
    card = make_card(["left", "right", "zoom"])
    ds = build_dataset("folder", folder_root, card=card, split="train", mode="train")
    assert ds.unreadable_classes() == ["zoom"]
    assert ds.skipped == 2 and all("zoom" in f for f in ds.skipped_files)
    ok = build_dataset("folder", folder_root, card=card, split="val", mode="test")
    assert ok.unreadable_classes() == [] and ok.skipped == 0
