"""--int8 --int8-target cpu (export/cpu_int8.py): the tiny checkpoint quantized by NNCF into an OpenVINO
IR, built once (its bound set out of reach, so the build also shows the exit-3 route); the IR opens on
the runtime's OpenVINO backend, agrees with FP32, keeps its attention in float."""

import logging

import numpy as np
import pytest

pytest.importorskip("nncf")
ov = pytest.importorskip("openvino")

import export.build_engine as be  # noqa: E402
from export.outputs import check_out  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.card import ModelCard  # noqa: E402
from runtime.common.errors import ExportError  # noqa: E402
from runtime.common.files import file_sha256  # noqa: E402
from tests.export.helpers import listing, write_video_folder  # noqa: E402

LAYOUT_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Convert"}  # pass a tensor on unchanged


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_ckpt):
    """(out folder, exit code, log, calibration videos) of one CPU INT8 build with a bound it cannot meet."""
    root = tmp_path_factory.mktemp("cpu_int8")
    videos = write_video_folder(root / "videos", per_class=5)
    out = root / "out"
    logger = logging.getLogger()
    handler = logging.FileHandler(root / "log.txt")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        rc = be.main([str(a) for a in ("--checkpoint", tiny_ckpt, "--out", out, "--int8", "--int8-target", "cpu",
                                       "--calib-dir", videos, "--int8-max-logit-error", "0.001")])
    finally:
        logger.removeHandler(handler)
        logger.level = level
        handler.close()
    return out, rc, (root / "log.txt").read_text(), videos


def test_writes_the_ir_with_its_card_and_exits_3_outside_the_bound(built, capsys):
    out, rc, text, _ = built
    assert set(listing(out)) == {"tiny.onnx", "tiny.json", "tiny.plugin.onnx", "tiny.int8.cpu.xml",
                                 "tiny.int8.cpu.bin", "tiny.int8.cpu.json"}
    card = ModelCard.load(out / "tiny.int8.cpu.json")
    q = card.quantization
    assert card.precision == "int8" and q["method"] == "nncf" and q["overflow_fix"] == "enable"
    assert q["held_out_clips"] == 3 and q["calibration_clips"] == 7  # export.int8_choice.split_clips
    assert 0 <= q["top1_agreement"] <= 1 and q["logit_error"] > q["max_logit_error"] == 0.001
    assert q["within_bound"] is False and rc == be.INT8_LOSS_EXIT
    assert "INT8 for CPUs (NNCF" in text and "OUTSIDE the bound" in text
    assert "No engine was built" not in text  # nothing for TensorRT to finish


def test_ir_runs_on_the_openvino_backend_and_agrees_with_fp32(built, caplog):
    """On clips like the calibration's (random clips fall outside its ranges: no agreement is promised)."""
    from calib.clips import load_calibration_clips

    out, _, _, videos = built
    with caplog.at_level(logging.WARNING):
        int8 = open_backend(out / "tiny.int8.cpu.xml", threads=1)
    assert int8.name == "openvino" and int8.card.precision == "int8"
    assert "meant for TensorRT" not in caplog.text  # the Q/DQ warning is for .onnx graphs
    fp32 = open_backend(out / "tiny.onnx", threads=1)
    clips = load_calibration_clips(videos, fp32.card).clips
    a = np.concatenate([int8.infer(c[None]) for c in clips])
    b = np.concatenate([fp32.infer(c[None]) for c in clips])
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.8
    assert np.abs(a - b).max() <= 0.3 * (b.max() - b.min())


def _producer(port):
    """The op that computes what ``port`` reads, past the ops that only reshape it."""
    node = port.get_source_output().get_node()
    while node.get_type_name() in LAYOUT_OPS:
        node = node.input(0).get_source_output().get_node()
    return node


def _quantized_upstream(port) -> bool:
    """A FakeQuantize on the way into ``port``, past reshapes, splits and scalings by a constant."""
    node = _producer(port)
    if node.get_type_name() == "FakeQuantize":
        return True
    data = [i for i in node.inputs() if i.get_source_output().get_node().get_type_name() != "Constant"]
    if node.get_type_name() in ("Split", "VariadicSplit") or (
            node.get_type_name() in ("Multiply", "Divide") and len(data) < len(node.inputs())):
        return any(_quantized_upstream(i) for i in data)
    return False


def test_attention_stays_in_float_and_the_rest_is_quantized(built):
    from export.plugin_graph import attention_node_names
    from export.variants import load_graph

    out, *_ = built
    attention = attention_node_names(load_graph(out / "tiny.onnx"))
    ops = {op.get_friendly_name(): op for op in ov.Core().read_model(str(out / "tiny.int8.cpu.xml")).get_ops()}
    matmuls = [ops[n] for n in attention if ops[n].get_type_name() == "MatMul"]
    assert len(matmuls) == 2 * len(attention) // 3 > 0
    for op in matmuls:
        assert not any(_quantized_upstream(p) for p in op.inputs()), op.get_friendly_name()
    convs = [op for op in ops.values() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    quantized = [op for op in convs if _producer(op.input(0)).get_type_name() == "FakeQuantize"]
    assert len(quantized) >= 0.8 * len(convs)  # the others' quantizers sit before a Concat or a pool


def test_rerun_replaces_its_own_files(built, tiny_ckpt):
    out, *_ = built
    check_out(out, "tiny", file_sha256(tiny_ckpt), force=False)  # the IR and its weights are ours
    with pytest.raises(ExportError, match="tiny.int8.cpu.xml, tiny.int8.cpu.bin"):
        check_out(out, "tiny", "another source", force=False)


@pytest.mark.parametrize("extra, message", [
    (["--int8-target", "cpu"], "--int8-target says where the INT8 model runs: add --int8"),
    (["--int8", "--int8-target", "cpu", "--calib-cache"], "--int8-target cpu calibrates with NNCF"),
    (["--int8", "--int8-target", "cpu", "--calib-method", "entropy"], "--int8-target cpu calibrates with NNCF"),
    (["--int8", "--int8-target", "cpu", "--dla-core", "0"], "--plugin and --dla-core are TensorRT options"),
    (["--int8", "--int8-cpu-vnni"], "--int8-cpu-vnni says which CPUs the INT8 IR is for: add --int8 --int8-target cpu"),
    ("plugin graph", "is the fp32 graph, built as it is: --int8-target cpu quantizes the standard FP32 graph"),
])
def test_bad_combinations_are_refused_in_one_line(built, tiny_ckpt, tmp_path, extra, message, capsys):
    out, *_ = built
    if extra == "plugin graph":
        argv = ["--onnx", out / "tiny.plugin.onnx", "--int8", "--int8-target", "cpu", "--out", tmp_path / "o"]
    else:
        argv = ["--checkpoint", tiny_ckpt, "--out", tmp_path / "o", *extra]
    assert be.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()



def test_benchmark_writes_its_table_with_its_command(built, tmp_path):
    from benchmarks.cpu_int8 import main

    out, *_ = built
    table = tmp_path / "t.md"
    assert main(["--dir", str(out), "--name", "tiny", "--calls", "2", "--warmup", "1", "--profile-calls", "0",
                 "--out", str(table)]) == 0
    text = table.read_text()
    assert f"Command: `python -m benchmarks.cpu_int8 --dir {out} --name tiny" in text
    assert "| `tiny.int8.cpu.xml` (int8) |" in text and "| `tiny.onnx` (fp32) |" in text


def _largest_weight(xml) -> int:
    """The largest |value| of the IR's 8-bit weight constants (7-bit ranges with the overflow fix: 64)."""
    model = ov.Core().read_model(str(xml))
    return max(int(np.abs(op.get_data().astype(np.int32)).max()) for op in model.get_ops()
               if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8")


def test_a_build_for_vnni_cpus_keeps_full_8_bit_weights_and_warns_on_a_cpu_without(built, tiny_ckpt, tmp_path,
                                                                                     monkeypatch, caplog):
    """--int8-cpu-vnni: no overflow fix (the card says so; the weights take the 8-bit range, against
    the portable build's 7-bit ranges); opened on an x86 CPU without VNNI, one warning; with VNNI, or
    the portable IR anywhere, none."""
    import runtime.common.cpu as cpu

    out, _, _, videos = built
    vnni = tmp_path / "vnni"
    be.main([str(a) for a in ("--checkpoint", tiny_ckpt, "--out", vnni, "--int8", "--int8-target", "cpu",
                              "--int8-cpu-vnni", "--calib-dir", videos, "--accept-int8-loss")])
    assert ModelCard.load(vnni / "tiny.int8.cpu.json").quantization["overflow_fix"] == "disable"
    assert _largest_weight(out / "tiny.int8.cpu.xml") <= 64 < _largest_weight(vnni / "tiny.int8.cpu.xml")
    for has, xml, warned in [(False, vnni, True), (True, vnni, False), (False, out, False)]:
        monkeypatch.setattr(cpu, "has_vnni", lambda has=has: has)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            open_backend(xml / "tiny.int8.cpu.xml", "openvino", threads=1).close()
        assert ("quantized for CPUs with VNNI" in caplog.text) is warned, (has, xml)
