"""export/build_engine.py end to end without TensorRT, and its refusals of bad input."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import export.build_engine as be
from tests.export.polygraphy_checks import check_printed_commands
from calib.cache import key_path, parse_cache
from export.onnx_export import read_card_from_onnx
from runtime.card import ModelCard
from runtime.common.files import file_sha256
from tests.export.helpers import listing, make_checkpoint, write_video_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    return write_video_folder(tmp_path_factory.mktemp("calib") / "videos", per_class=5, broken=1)


def run(argv, caplog):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = be.main([str(a) for a in argv])
    return rc, caplog.text


def test_end_to_end_without_tensorrt(tmp_path, tiny_ckpt, calib_dir, caplog):
    out = tmp_path / "out"
    rc, text = run(["--checkpoint", tiny_ckpt, "--out", out, "--fp16", "--int8", "--calib-dir", calib_dir,
                    "--calib-method", "percentile"], caplog)
    assert rc == 0
    names = {"tiny.onnx", "tiny.json", "tiny.plugin.onnx", "tiny.fp16.onnx", "tiny.int8.qdq.onnx"}
    assert set(listing(out)) == names
    sha = file_sha256(tiny_ckpt)
    for name, precision in (("tiny.onnx", "fp32"), ("tiny.plugin.onnx", "fp32"), ("tiny.fp16.onnx", "fp16"),
                            ("tiny.int8.qdq.onnx", "int8")):
        card = read_card_from_onnx(out / name)
        assert card.precision == precision and card.source_sha256 == sha, name
    assert ModelCard.load(out / "tiny.json") == read_card_from_onnx(out / "tiny.onnx")
    for stage in ("[export ONNX] done", "[parity onnxruntime vs PyTorch] done", "[Q/DQ ONNX] done",
                  "[TensorRT 10.3 compatibility] done"):
        assert stage in text
    assert "No engine was built: TensorRT is not installed" in text
    assert f"--onnx {out}/tiny.int8.qdq.onnx --out {out} --name tiny" in text
    assert "trtexec --onnx=" in text and "tiny.int8.qdq.onnx" in text.split("No engine was built")[1]
    assert "FP32 parity: max|diff|" in text and "INT8 choice on 3 held-out calibration clips" in text
    q = read_card_from_onnx(out / "tiny.int8.qdq.onnx").quantization
    assert q["method"] == "percentile 99.99" and q["held_out_clips"] == 3 and q["calibration_clips"] == 7
    assert isinstance(q["within_bound"], bool) and 0 <= q["top1_agreement"] <= 1
    assert not [p for d in (tmp_path, out) for p in d.iterdir() if p.name.startswith(".")], "staging left behind"
    check_printed_commands(text)  # the Polygraphy checks it printed, on onnxruntime
    # the same source may replace its own outputs
    rc, _ = run(["--checkpoint", tiny_ckpt, "--out", out], caplog)
    assert rc == 0


def test_cache_route_dynamic_batch_plugin_and_onnx_rerun(tmp_path, tiny_ckpt, calib_dir, caplog):
    out = tmp_path / "out"
    lib = tmp_path / "libtsi_plugins.so"  # only named in the commands: never loaded without TensorRT
    rc, text = run(["--checkpoint", tiny_ckpt, "--out", out, "--int8", "--calib-cache", "--calib-dir", calib_dir,
                    "--calib-method", "minmax", "--dynamic-batch", "--batch", "1,2,4", "--plugin", lib], caplog)
    assert rc == 0
    assert set(listing(out)) == {"tiny.onnx", "tiny.json", "tiny.plugin.onnx", "tiny.int8.calib.cache",
                                 "tiny.int8.calib.cache.json"}
    version, algo, scales = parse_cache((out / "tiny.int8.calib.cache").read_text())
    assert (version, algo) == (100300, "EntropyCalibration2") and "clip" in scales and len(scales) > 500
    key = json.loads(key_path(out / "tiny.int8.calib.cache").read_text())
    assert key["onnx_sha256"] == file_sha256(out / "tiny.onnx") and key["method"] == "minmax"
    assert key["quantization"]["method"] == "minmax" and "float_layers" in key["quantization"]
    assert "--staticPlugins=" in text and "--minShapes=clip:1x4x3x64x64" in text
    assert "--maxShapes=clip:4x4x3x64x64" in text
    assert "--calib=" in text
    # on the target: the ONNX in --out with its keyed cache, no calibration videos needed
    rc, text = run(["--onnx", out / "tiny.onnx", "--out", out, "--int8", "--calib-cache"], caplog)
    assert rc == 0 and "[calibration cache (reused)] done" in text
    # a derived graph is built as it is
    rc, text = run(["--onnx", out / "tiny.plugin.onnx", "--out", out], caplog)
    assert rc == 0 and "needs --plugin LIB" in text
    # the --onnx route needs no torch (a Jetson): run it with `import torch` made to fail
    code = ("import sys; sys.modules['torch'] = None; from export.build_engine import main; "
            f"sys.exit(main(['--onnx', {str(out / 'tiny.onnx')!r}, '--out', {str(out)!r}, '--fp16', "
            "'--int8', '--calib-cache']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "tiny.fp16.onnx").is_file() and "No engine was built" in r.stderr


def _mismatched_card(tmp_path):
    path = make_checkpoint(tmp_path / "ok.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["card"]["frames"] = 8
    torch.save(ckpt, tmp_path / "mismatch.pt")
    return ["--checkpoint", tmp_path / "mismatch.pt"]


@pytest.mark.parametrize("case, message", [
    ("missing_ckpt", "checkpoint not found"),
    ("corrupt_ckpt", "truncated or corrupt checkpoint"),
    ("corrupt_onnx", "not a readable ONNX model"),
    ("empty_calib", "holds no video"),
    ("few_clips", "3 usable clip(s) (4 video(s), 1 unreadable); at least 8 are needed"),
    ("mismatched_card", "model card does not match the model: card T=8 but model T=4"),
    ("calib_cache_without_int8", "--calib-cache makes INT8 engines: add --int8"),
    ("int8_without_calib_dir", "--int8 needs --calib-dir"),
    ("dla_dynamic", "DLA needs static shapes"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, tiny_ckpt, case, message, capsys):
    out = tmp_path / "run" / "out"
    if case == "missing_ckpt":
        argv = ["--checkpoint", tmp_path / "nope.pt"]
    elif case == "corrupt_ckpt":
        (tmp_path / "c.pt").write_bytes(tiny_ckpt.read_bytes()[:5000])
        argv = ["--checkpoint", tmp_path / "c.pt"]
    elif case == "corrupt_onnx":
        (tmp_path / "c.onnx").write_bytes(b"\x12\x34 not onnx" * 30)
        argv = ["--onnx", tmp_path / "c.onnx"]
    elif case == "empty_calib":
        (tmp_path / "empty").mkdir()
        argv = ["--checkpoint", tiny_ckpt, "--int8", "--calib-dir", tmp_path / "empty"]
    elif case == "few_clips":
        argv = ["--checkpoint", tiny_ckpt, "--int8", "--calib-dir",
                write_video_folder(tmp_path / "few", per_class=1, classes=("a", "b", "c"), broken=1)]
    elif case == "mismatched_card":
        argv = _mismatched_card(tmp_path)
    elif case == "calib_cache_without_int8":
        argv = ["--checkpoint", tiny_ckpt, "--calib-cache"]
    elif case == "int8_without_calib_dir":
        argv = ["--checkpoint", tiny_ckpt, "--int8"]
    else:
        argv = ["--checkpoint", tiny_ckpt, "--fp16", "--dla-core", "0", "--dynamic-batch"]
    rc = be.main([str(a) for a in argv + ["--out", out]])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (progress bars go to stderr too)
    assert rc == 2
    assert last.startswith("error: ") and message in last
    assert not out.exists() and listing(out.parent) == []  # nothing partial, no staging left


def test_refuses_foreign_outputs_without_force(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "out"
    other = make_checkpoint(tmp_path / "other.pt", seed=1)
    assert be.main(["--checkpoint", str(other), "--out", str(out), "--name", "tiny"]) == 0
    before = (out / "tiny.onnx").read_bytes()
    capsys.readouterr()
    assert be.main(["--checkpoint", str(tiny_ckpt), "--out", str(out)]) == 2
    assert "made from another source" in capsys.readouterr().err
    assert (out / "tiny.onnx").read_bytes() == before
    assert be.main(["--checkpoint", str(tiny_ckpt), "--out", str(out), "--force"]) == 0
    assert read_card_from_onnx(out / "tiny.onnx").source_sha256 == file_sha256(tiny_ckpt)


def test_no_arguments_builds_the_demo(tmp_path, tiny_ckpt, monkeypatch, caplog):
    """No arguments: the demo checkpoint (a tiny stand-in in tmp, not the repo's), synthetic
    calibration videos from tsi.data.synthetic, FP16 + INT8 into artifacts/demo (in tmp)."""
    import calib.ranges
    import export.pipeline
    import tsi.assets

    demo_ckpt, demo_out = tmp_path / "tsi" / "assets" / "demo_tsi_r18.pt", tmp_path / "artifacts" / "demo"
    monkeypatch.setattr(tsi.assets, "DEMO_CHECKPOINT", demo_ckpt)
    monkeypatch.chdir(tmp_path)  # the demo's --out, artifacts/demo, is relative to the current directory
    monkeypatch.setattr(export.pipeline, "DEMO_CALIB_PER_CLASS", 1)  # 11 synthetic videos keep the test fast
    monkeypatch.setattr(calib.ranges, "NUM_BINS", 256)
    rc, _ = run([], caplog)
    assert rc == 2 and not demo_out.exists()  # no demo checkpoint yet
    demo_ckpt.parent.mkdir(parents=True)
    demo_ckpt.write_bytes(tiny_ckpt.read_bytes())
    rc, text = run([], caplog)
    assert rc == 0
    files = set(listing(demo_out))
    assert {"tsi_demo.onnx", "tsi_demo.json", "tsi_demo.plugin.onnx", "tsi_demo.fp16.onnx",
            "tsi_demo.int8.qdq.onnx"} <= files
    assert len([f for f in files if f.startswith("calib_videos/train/")]) == 11
    assert "INT8 calibration (auto), measured on held-out clips" in text
    assert read_card_from_onnx(demo_out / "tsi_demo.onnx") == ModelCard.load(demo_out / "tsi_demo.json")


@pytest.mark.parametrize("how", ["script", "module"])
def test_runs_as_script_and_module(tmp_path, how):
    cmd = [sys.executable, str(REPO / "export" / "build_engine.py")] if how == "script" else \
        [sys.executable, "-m", "export.build_engine"]
    cwd = tmp_path if how == "script" else REPO
    r = subprocess.run(cmd + ["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")],
                       cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'missing.pt'}"
    assert not (tmp_path / "o").exists()


def test_engine_graph_choice_per_tensorrt_version(tmp_path):
    """Which graph each engine is built from, for fake TensorRT versions (no TensorRT needed)."""
    import dataclasses

    from export.options import build_parser, resolve
    from export.pipeline import engine_targets
    from runtime.trt_version import TRTCapabilities

    args = build_parser().parse_args(["--checkpoint", "x.pt", "--fp16", "--int8", "--calib-dir", str(tmp_path)])
    opts = resolve(args, argv_empty=False)
    graphs = {k: Path(f"x.{k}.onnx") for k in ("fp32", "fp16", "int8", "fp32.plugin", "fp16.plugin", "int8.plugin")}
    t10 = engine_targets(opts, graphs, TRTCapabilities.of("10.3.0.30"))
    t11 = engine_targets(opts, graphs, TRTCapabilities.of("11.0.0"))
    assert t10 == [("fp16", graphs["fp32"], False), ("int8", graphs["int8"], False)]  # BuilderFlag.FP16
    assert t11 == [("fp16", graphs["fp16"], False), ("int8", graphs["int8"], False)]  # strongly typed
    opts = dataclasses.replace(opts, calib_cache=True, plugin=Path("lib.so"))
    assert engine_targets(opts, graphs, TRTCapabilities.of("10.3"))[1] == ("int8", graphs["fp32.plugin"], True)


def test_finish_commands():
    from export.target_commands import finish_commands
    from runtime.card import ModelCard

    card = ModelCard(arch="tsi_r18", labels=("a", "b"), frames=4, input_size=64, resize_short=73)
    out = Path("/o")
    graphs = {"fp32": out / "m.onnx", "fp32.plugin": out / "m.plugin.onnx", "fp16": out / "m.fp16.onnx",
              "fp16.plugin": out / "m.fp16.plugin.onnx", "int8.cache": out / "m.int8.calib.cache"}
    cmds = finish_commands(graphs, card, out=out, name="m", fp16=True, int8=True, calib_cache=True,
                           plugin=Path("/lib/libtsi.so"), dla_core=0, workspace=512)
    assert cmds[0] == ("python export/build_engine.py --onnx /o/m.fp16.plugin.onnx --out /o --name m "
                       "--plugin /lib/libtsi.so --dla-core 0 --workspace 512")
    assert cmds[1].endswith("--int8 --calib-cache --plugin /lib/libtsi.so --dla-core 0 --workspace 512")
    assert ("trtexec --onnx=/o/m.plugin.onnx --int8 --fp16 --calib=/o/m.int8.calib.cache "
            "--staticPlugins=/lib/libtsi.so --useDLACore=0 --allowGPUFallback --memPoolSize=workspace:512") in cmds[4]


@pytest.mark.parametrize("errno_, where", [(30, "mkdtemp"), (13, "mkdtemp"), (28, "save_onnx")])
def test_os_errors_are_one_line_exit_2_and_leave_nothing(tmp_path, tiny_onnx, monkeypatch, capsys, errno_, where):
    """Read-only (EROFS), no permission (EACCES), disk full (ENOSPC): one line, exit 2, --out as it was.
    (The tests run as root, where chmod does not stop a write: the errors are raised where the OS
    would raise them.)"""
    import errno
    import os

    import export.onnx_export
    import tempfile as tempfile_mod

    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    err = OSError(errno_, os.strerror(errno_), str(out / "x"))
    if where == "mkdtemp":
        monkeypatch.setattr(tempfile_mod, "mkdtemp", lambda **kw: (_ for _ in ()).throw(err))
    else:
        monkeypatch.setattr(export.onnx_export, "save_onnx", lambda proto, path: (_ for _ in ()).throw(err))
    rc = be.main(["--onnx", str(tiny_onnx[0]), "--out", str(out), "--fp16"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and lines[-1] == f"error: {out / 'x'}: {os.strerror(errno_)}", lines[-1]
    assert errno.errorcode[errno_] in ("EROFS", "EACCES", "ENOSPC")
    assert listing(out) == ["mine.txt"]  # nothing half-written, no staging folder left


def test_out_on_another_file_system(tmp_path, tiny_onnx, monkeypatch, capsys):
    """--out on its own file system (a Docker volume, an SD card, NFS): a rename from outside --out
    would fail with EXDEV, so the staging folder lives inside --out and every rename stays there."""
    import os

    import export.outputs

    out = tmp_path / "mnt" / "out"
    real_replace = os.replace

    def replace(src, dst):
        inside = lambda p: Path(p).resolve().is_relative_to(out.resolve())  # noqa: E731
        if inside(src) != inside(dst):
            raise OSError(18, "Invalid cross-device link", str(src), None, str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(export.outputs.os, "replace", replace)
    assert be.main(["--onnx", str(tiny_onnx[0]), "--out", str(out), "--fp16"]) == 0
    assert {"tiny.onnx", "tiny.json", "tiny.fp16.onnx"} <= set(listing(out))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_calibration_folder_checked_before_any_work(tmp_path, tiny_ckpt, capsys, monkeypatch):
    import export.pipeline

    monkeypatch.setattr(export.pipeline, "standard_from_checkpoint", lambda *a: pytest.fail("work started"))
    rc = be.main(["--checkpoint", str(tiny_ckpt), "--int8", "--calib-dir", str(tmp_path / "nope"),
                  "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and f"--calib-dir {tmp_path / 'nope'}: not a folder" in err
    assert not (tmp_path / "out").exists()
