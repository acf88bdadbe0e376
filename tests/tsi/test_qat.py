"""Quantization-aware fine-tuning (tsi.qat, ``tsi-train --qat``): the fake quantizers sit where the
builder's Q/DQ graph quantizes, the fine-tuned model computes what that graph computes, the learnt
ranges reach the builder as a measured candidate, and a wrong graph is refused in one line."""

import logging

import numpy as np
import onnx
import pytest
import torch

import export.build_engine as be
from calib.qat_points import activation_points, module_of_node
from export.int8_choice import LEARNT
from export.onnx_export import read_card_from_onnx
from tests.export.helpers import structured_clips
from tsi import train as tsi_train
from tsi.checkpoint import load_checkpoint, load_model, make_card, save_checkpoint
from tsi.cli import UsageError
from tsi.data.synthetic import generate
from tsi.model import create_model
from tsi.qat import Qat, graph_points, learnt_points

GEOMETRY = dict(frames=4, input_size=64, base_width=8, sme_reduction=2)  # 64: every SME has a 2x2+ attention


def train_argv(root, out, *extra):
    return ["--data", str(root / "data"), "--out", str(out), "--arch", "tsi_r18", "--frames", "4",
            "--input-size", "64", "--base-width", "8", "--sme-reduction", "2", "--batch-size", "4",
            "--workers", "0", "--span-frames", "8", "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(data folder, a trained-looking checkpoint of its labels, that model's Q/DQ graph, FP32 graph)."""
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from export.variants import int8_ranges, qdq_graph, write_graph
    from runtime.common.files import file_sha256

    root = tmp_path_factory.mktemp("qat")
    generate(root / "data", train=2, val=1, seed=0, frames=8, size=(64, 48), progress=False)
    labels = sorted(p.name for p in (root / "data" / "train").iterdir())
    torch.manual_seed(0)
    model = create_model("tsi_r18", num_classes=len(labels), zero_init_residual=False, **GEOMETRY).eval()
    with torch.no_grad():  # BN statistics and a head that make every layer count in the logits
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.2, 1.0)
        model.fc.weight.normal_(0, 0.5)
    ckpt = save_checkpoint(root / "base.pt", model, make_card(model.cfg, labels, span_frames=8))
    friendly, card = export_friendly_model(ckpt)
    fp32 = export_onnx(friendly, card, root / "base.onnx", source_sha256=file_sha256(ckpt))
    clips = structured_clips(12, seed=3, frames=4, size=64).numpy()
    qdq = qdq_graph(fp32, int8_ranges(fp32, clips, "minmax"))
    graph = write_graph(qdq, root / "base.int8.qdq.onnx", card.replace(precision="int8"))
    return root, ckpt, graph, fp32


def test_module_of_node():
    assert module_of_node("/backbone/stages/stages.2/stages.2.1/unit/motion/pyramid.0/Conv") == \
        "backbone.stages.2.1.unit.motion.pyramid.0"
    assert module_of_node("/backbone/stages/stages.2/stages.2.0/shortcut/shortcut.0/Conv") == \
        "backbone.stages.2.0.shortcut.0"
    assert module_of_node("/fc/Gemm") == "fc"
    assert module_of_node("Conv_3") is None


def test_points_are_the_model_layers_and_readers_of_one_tensor_share_a_quantizer(setup):
    _, ckpt, graph, _ = setup
    model, card = load_model(ckpt)
    points = graph_points(graph, card)
    layers = dict(model.named_modules())
    readers = [m for p in points for m in p["readers"]]
    assert all(isinstance(layers[m], (torch.nn.Conv2d, torch.nn.Linear)) for m in readers) and "fc" in readers
    assert any(len(p["readers"]) > 1 for p in points)  # a block's output: the next head and shortcut convs
    qat = Qat(model, points, graph.name)
    leaf = (torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.AdaptiveAvgPool2d)
    assert qat.at_source and all(isinstance(layers[n], leaf) for n in qat.at_source)
    assert len(list(qat.parameters())) == len(qat.points)
    qat.remove()
    assert "forward" not in vars(layers["fc"]) and not layers[qat.at_source[0]]._forward_hooks


def _quantized_outputs(graph, model, qat, clip):
    """{source module: (its output in torch, the same tensor after its Q/DQ pair in onnxruntime)} of
    every point ``qat`` quantizes at a module's output, in the order torch runs them."""
    import onnxruntime as ort

    from calib.graph_maps import graph_maps

    proto = onnx.load(str(graph))
    _, consumers = graph_maps(proto)
    sources = set(qat.at_source)
    dq_of = {}
    for pt in activation_points(proto):
        if pt.source in sources:
            q = next(c for c in consumers[pt.tensor] if c.op_type == "QuantizeLinear")
            dq_of[pt.source] = consumers[q.output[0]][0].output[0]
    for name in dq_of.values():
        proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    ran = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: clip})))
    got = {}
    layers = dict(model.named_modules())

    def keep(module, _args, out, name):
        got[name] = out.detach().clone().numpy()

    hooks = [layers[n].register_forward_hook(lambda m, a, o, n=n: keep(m, a, o, n)) for n in dq_of]
    with torch.no_grad():
        model(torch.from_numpy(clip))
    for h in hooks:
        h.remove()
    return {n: (got[n], ran[dq_of[n]]) for n in got}


def test_fake_quantized_model_computes_what_the_qdq_graph_computes(setup):
    """At the first quantized outputs (the stem's pool, the first block's head) the fine-tuned model
    in eval mode holds the very values onnxruntime computes on the Q/DQ graph: the same grid, the same
    placement. (Deeper, float rounding differences flip single steps and spread: that is noise of the
    size of quantization itself, not a placement error.) The float model does not."""
    _, ckpt, graph, _ = setup
    model, card = load_model(ckpt)
    clip = structured_clips(1, seed=11, frames=4, size=64).numpy()
    qat = Qat(model, graph_points(graph, card))
    first = list(_quantized_outputs(graph, model, qat, clip).items())[:2]
    assert [n for n, _ in first] == ["backbone.stem.3", "backbone.stages.0.0.head.2"]
    for name, (sim, ran) in first:
        assert np.mean(np.abs(sim - ran) > 1e-4) < 0.005, name
    qat.remove()
    float_out = _quantized_outputs(graph, model, Qat(model, graph_points(graph, card)), clip)  # names only
    with torch.no_grad():
        plain, _ = load_model(ckpt)
        got = {}
        plain.backbone.stem[3].register_forward_hook(lambda m, a, o: got.__setitem__("pool", o.clone().numpy()))
        plain(torch.from_numpy(clip))
    assert np.mean(np.abs(got["pool"] - float_out["backbone.stem.3"][1]) > 1e-4) > 0.5


def test_fine_tuning_learns_ranges_the_builder_measures(setup, tmp_path, caplog):
    root, ckpt, graph, _ = setup
    out = tmp_path / "qat"
    tsi_train.run(train_argv(root, out, "--epochs", "1", "--lr-steps", "1", "--max-steps", "3", "--lr", "0.5",
                             "--finetune", str(ckpt), "--qat", str(graph)))
    saved = load_checkpoint(out / "last.pt")["qat"]
    start = {(tuple(p.readers), p.source): p.amax for p in activation_points(onnx.load(str(graph)))}
    learnt = {(tuple(p["readers"]), p["source"]): p["amax"] for p in saved["points"]}
    assert set(learnt) <= set(start) and saved["graph"] == graph.name
    assert any(abs(learnt[k] - start[k]) > 1e-7 for k in learnt)  # learnt, not copied
    load_model(out / "last.pt")  # plain weights: loads as any checkpoint
    assert learnt_points(out / "last.pt") == saved["points"] and learnt_points(ckpt) is None

    built = tmp_path / "built"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = be.main(["--checkpoint", str(out / "last.pt"), "--out", str(built), "--int8", "--calib-dir",
                      str(root / "data" / "train"), "--calib-method", "minmax", "--accept-int8-loss"])
    assert rc == 0
    assert f"{LEARNT}: agreement" in caplog.text  # measured beside minmax
    method = read_card_from_onnx(next(built.glob("*.int8.qdq.onnx"))).quantization["method"]
    assert method in (LEARNT, "minmax")


def test_resume_keeps_the_quantizers(setup, tmp_path):
    root, ckpt, graph, _ = setup
    out = tmp_path / "qat"
    base = train_argv(root, out, "--lr-steps", "9", "--max-steps", "1")
    tsi_train.run([*base, "--epochs", "1", "--finetune", str(ckpt), "--qat", str(graph)])
    first = load_checkpoint(out / "last.pt")["qat"]
    with pytest.raises(UsageError, match="--qat initialises a new model"):
        tsi_train.run([*base, "--epochs", "2", "--resume", "--qat", str(graph)])
    tsi_train.run([*base, "--epochs", "2", "--resume"])
    second = load_checkpoint(out / "last.pt")["qat"]
    keys = [[(tuple(p["readers"]), p["source"]) for p in s["points"]] for s in (first, second)]
    assert keys[0] == keys[1] and first["points"] != second["points"]  # the same points, trained on


@pytest.mark.parametrize("case, message", [
    ("no-finetune", "--qat fine-tunes a trained model: give it with --finetune"),
    ("float-graph", "no activation is quantized in this graph"),
    ("missing", "--qat: no such graph"),
    ("not-onnx", "is not an ONNX file"),
    ("other-model", "not of the model fine-tuned"),
])
def test_a_graph_that_cannot_guide_is_refused(setup, tmp_path, case, message):
    root, ckpt, graph, fp32 = setup
    finetune = ["--finetune", str(ckpt)]
    if case == "no-finetune":
        qat, finetune = graph, []
    elif case == "float-graph":
        qat = fp32
    elif case == "missing":
        qat = tmp_path / "nothing.onnx"
    elif case == "not-onnx":
        qat = tmp_path / "notes.onnx"
        qat.write_text("not a graph")
    else:
        other = onnx.load(str(graph))
        card = read_card_from_onnx(graph)
        from export.variants import write_graph

        qat = write_graph(other, tmp_path / "other.onnx", card.replace(labels=tuple(f"x{i}" for i in range(
            card.num_classes))))
    with pytest.raises(UsageError) as e:
        tsi_train.run(train_argv(root, tmp_path / "run", "--epochs", "1", *finetune, "--qat", str(qat)))
    assert message in str(e.value) and "\n" not in str(e.value)
