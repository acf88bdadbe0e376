"""UCF101, HMDB51 and Jester annotation files, in exactly the layout they are distributed in."""

import pytest

from tests.data.videos import write_frame_folder, write_video
from tsi.data.datasets import build_dataset
from tsi.data.formats import DatasetFormatError


def crlf(*lines):  # UCF101's lists come with Windows line endings
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def ucf(tmp_path):
    root = tmp_path / "UCF-101"
    lists = tmp_path / "UCF-101" / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(crlf("1 ApplyEyeMakeup", "2 Archery", "3 HandstandPushups"))
    (lists / "trainlist01.txt").write_bytes(crlf(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", "Archery/v_Archery_g08_c02.avi 2",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 3", "Archery/v_Archery_g09_c01.avi 2"))
    (lists / "testlist01.txt").write_bytes(crlf(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi"))
    for rel in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g08_c02.avi",
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi"):
        write_video(root / rel, 4)
    # one training video extracted to frames instead (tsi.data.extract's layout); one missing
    write_frame_folder(root / "HandstandPushups" / "v_HandStandPushups_g08_c01", 4, pattern="img_{:05d}.jpg")
    return root


def test_ucf101(ucf):
    train = build_dataset("ucf101", ucf, split="train", labels_only=True)
    assert train.classes == ("ApplyEyeMakeup", "Archery", "HandstandPushups")
    assert [(s.path.relative_to(ucf).as_posix(), s.label) for s in train.samples] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0), ("Archery/v_Archery_g08_c02.avi", 1),
        ("HandstandPushups/v_HandStandPushups_g08_c01", 2)]
    assert train.missing_files == [str(ucf / "Archery/v_Archery_g09_c01.avi")]
    test = build_dataset("ucf101", ucf, split="test", labels_only=True)
    assert [s.label for s in test.samples] == [0, 2]  # labels from the class folders
    assert len(build_dataset("ucf101", ucf, split="val", labels_only=True)) == 2
    with pytest.raises(DatasetFormatError, match="trainlist02.txt"):
        build_dataset("ucf101", ucf, split="train", split_id=2, labels_only=True)
    lst = ucf / "ucfTrainTestlist" / "trainlist01.txt"
    lst.write_bytes(crlf("Archery/v_Archery_g08_c02.avi 1"))
    with pytest.raises(DatasetFormatError, match="trainlist01.txt:1: label '1' disagrees with class 'Archery'"):
        build_dataset("ucf101", ucf, split="train", labels_only=True)


def test_hmdb51(tmp_path):
    root = tmp_path / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    tags = {"brush_hair": [("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 1),
                           ("April_09_brush_hair_u_nm_np1_ba_goo_1.avi", 2),
                           ("Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi", 0)],
            "cartwheel": [("(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi", 2),
                          ("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi", 1)]}
    for cls, rows in tags.items():  # "name tag " with the trailing space of the official files
        for split_id in (1, 2):
            (splits / f"{cls}_test_split{split_id}.txt").write_text(
                "".join(f"{v} {t if split_id == 1 else 3 - t if t else 0} \n" for v, t in rows))
        for v, _ in rows:
            write_video(root / cls / v, 4)
    train = build_dataset("hmdb51", root, split="train", labels_only=True)
    assert train.classes == ("brush_hair", "cartwheel")
    assert sorted((s.path.name, s.label) for s in train.samples) == [
        ("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi", 1),
        ("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0)]
    test = build_dataset("hmdb51", root, split="test", labels_only=True)
    assert sorted(s.path.name for s in test.samples) == [
        "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi", "April_09_brush_hair_u_nm_np1_ba_goo_1.avi"]
    # split 2 swaps the tags here; tag 0 stays out of both
    train2 = build_dataset("hmdb51", root, split="train", split_id=2, labels_only=True)
    assert {s.path.name for s in train2.samples} == {s.path.name for s in test.samples}
    (splits / "cartwheel_test_split1.txt").write_text("video_without_tag.avi\n")
    with pytest.raises(DatasetFormatError, match=r"cartwheel_test_split1.txt:1: expected '<video> <0\|1\|2>'"):
        build_dataset("hmdb51", root, split="train", labels_only=True)


def test_jester(tmp_path):
    root = tmp_path / "jester"
    (root / "20bn-jester-v1").mkdir(parents=True)
    (root / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\nDoing other things\n")
    (root / "jester-v1-train.csv").write_text("34870;Swiping Right\n56557;Doing other things\n129112;Swiping Left\n")
    (root / "jester-v1-validation.csv").write_text("9223;Swiping Left\n")
    (root / "jester-v1-test.csv").write_text("13\n")
    for vid in (34870, 56557, 9223):  # Jester ships JPEG frames 00001.jpg ...
        write_frame_folder(root / "20bn-jester-v1" / str(vid), 4, pattern="{:05d}.jpg")
    train = build_dataset("jester", root, split="train", labels_only=True)
    assert train.classes == ("Swiping Left", "Swiping Right", "Doing other things")  # file order
    assert [(s.path.name, s.label) for s in train.samples] == [("34870", 1), ("56557", 2)]
    assert train.missing_files == [str(root / "20bn-jester-v1" / "129112")]
    val = build_dataset("jester", root, split="val", labels_only=True)
    assert [(s.path.name, s.label) for s in val.samples] == [("9223", 0)]
    with pytest.raises(DatasetFormatError, match="test list has no labels"):
        build_dataset("jester", root, split="test", labels_only=True)
    (root / "jester-v1-validation.csv").write_text("9223;Thumb Up\n")
    with pytest.raises(DatasetFormatError, match="label 'Thumb Up' is not in"):
        build_dataset("jester", root, split="val", labels_only=True)
