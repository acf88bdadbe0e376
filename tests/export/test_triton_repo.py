"""The Triton model repository (export.triton_repo): config.pbtxt read back with Triton's own schema
(tritonclient's model_config_pb2, text_format.Parse: a field that is not in the schema fails), its
I/O, batching, instances and card; the clip model, the online step graph, an engine; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tritonclient.grpc.model_config_pb2")

from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as pb  # noqa: E402

from export.triton_repo import main, write_model  # noqa: E402
from export.triton_config import ServingOptions  # noqa: E402
from runtime.card import ONNX_METADATA_KEY, ModelCard  # noqa: E402
from runtime.common.errors import ExportError  # noqa: E402
from tests.runtime.helpers import make_card, make_onnx, make_step_onnx  # noqa: E402


def parse(folder: Path) -> pb.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())


def test_a_dynamic_batch_clip_model_is_served_batched_with_its_card(tmp_path):
    card = make_card()
    model = make_onnx(tmp_path / "colour.onnx", card=card)
    folder = write_model(tmp_path / "repo", model, opts=ServingOptions(max_batch=16, preferred=(4, 8),
                                                                     queue_delay_us=250, instances=2, kind="cpu"))
    assert folder == tmp_path / "repo" / "colour"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["1", "1/model.onnx", "config.pbtxt"]
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    cfg = parse(folder)
    assert cfg.name == "colour" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 16
    assert [(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [("clip", pb.TYPE_FP32, [4, 3, 16, 16])]
    assert [(o.name, o.data_type, list(o.dims)) for o in cfg.output] == [("logits", pb.TYPE_FP32, [3])]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, pb.ModelInstanceGroup.KIND_CPU)]
    assert ModelCard.from_json(cfg.parameters[ONNX_METADATA_KEY].string_value) == card
    assert not [p for p in (tmp_path / "repo").iterdir() if p.name.startswith(".")]  # no staging left


def test_the_schema_check_fails_on_a_typo(tmp_path):
    folder = write_model(tmp_path / "repo", make_onnx(tmp_path / "m.onnx", card=make_card()))
    text = (folder / "config.pbtxt").read_text()
    assert "max_batch_size: 8" in text
    with pytest.raises(text_format.ParseError, match="max_batch_sise"):
        text_format.Parse(text.replace("max_batch_size", "max_batch_sise"), pb.ModelConfig())


def test_a_static_model_and_a_step_graph_are_served_unbatched(tmp_path):
    static = write_model(tmp_path / "repo", make_onnx(tmp_path / "b1.onnx", card=make_card(), batch=1))
    cfg = parse(static)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.input[0].dims) == [1, 4, 3, 16, 16]
    step_card = make_card(mode="online")
    step = write_model(tmp_path / "repo", make_step_onnx(tmp_path / "m.online.onnx", step_card))
    cfg = parse(step)
    assert step.name == "m_online" and cfg.max_batch_size == 0
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("frame", [1, 3, 16, 16]), ("h", [1, 3])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("logits", [1, 3]), ("h.next", [1, 3])]
    assert json.loads(cfg.parameters[ONNX_METADATA_KEY].string_value)["mode"] == "online"
    with pytest.raises(ExportError, match="static batch axis.*--triton-max-batch"):
        write_model(tmp_path / "repo2", make_onnx(tmp_path / "b1.onnx", card=make_card(), batch=1),
                    opts=ServingOptions(max_batch=4))


def test_an_engine_is_a_plan_with_the_io_of_its_graph(tmp_path):
    card = make_card(precision="fp16")
    graph = make_onnx(tmp_path / "m.onnx", card=make_card())
    engine = tmp_path / "m.fp16.engine"
    engine.write_bytes(b"not read: the server's TensorRT loads it")
    card.save(tmp_path / "m.fp16.json")
    with pytest.raises(ExportError, match="pass --graph"):
        write_model(tmp_path / "repo", engine)
    folder = write_model(tmp_path / "repo", engine, graph=graph)
    cfg = parse(folder)
    assert folder.name == "m_fp16" and (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert cfg.backend == "tensorrt" and cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 8
    assert [g.kind for g in cfg.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert ModelCard.from_json(cfg.parameters[ONNX_METADATA_KEY].string_value).precision == "fp16"


def test_an_existing_model_is_replaced_only_with_force(tmp_path, capsys):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card())
    repo = tmp_path / "repo"
    assert main(["--model", str(model), "--out", str(repo)]) == 0
    (repo / "colour" / "config.pbtxt").write_text("the user's own\n")
    assert main(["--model", str(model), "--out", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists: pass --force" in err
    assert (repo / "colour" / "config.pbtxt").read_text() == "the user's own\n"
    assert main(["--model", str(model), "--out", str(repo), "--force", "--triton-max-batch", "4"]) == 0
    assert parse(repo / "colour").max_batch_size == 4
    assert sorted(p.name for p in repo.iterdir()) == ["colour"]


@pytest.mark.parametrize("args, message", [
    (["--triton-preferred-batch", "4,x"], "sizes like 4,8"),
    (["--triton-preferred-batch", "16"], "1 to the max batch 8"),
    (["--triton-max-batch", "0"], "--triton-max-batch must be >= 1"),
    (["--triton-queue-delay-us", "-1"], "must be >= 0"),
    (["--triton-instances", "0"], "must be >= 1"),
    (["--name", ".hidden"], "plain model name"),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card())
    assert main(["--model", str(model), "--out", str(tmp_path / "repo"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "repo" / "colour").exists()


def test_a_graph_that_does_not_match_its_card_is_refused(tmp_path, capsys):
    model = make_onnx(tmp_path / "m.onnx", card=make_card(frames=8), frames=4)
    assert main(["--model", str(model), "--out", str(tmp_path / "repo")]) == 2
    assert "frames T: model 4, card 8" in capsys.readouterr().err


def test_the_builder_writes_the_repository_of_what_it_built(tmp_path, tiny_ckpt, capsys):
    import export.build_engine as be

    out, repo = tmp_path / "out", tmp_path / "repo"
    argv = ["--checkpoint", str(tiny_ckpt), "--out", str(out), "--dynamic-batch", "--triton-repo", str(repo),
            "--triton-max-batch", "4", "--triton-instance-kind", "cpu"]
    assert be.main(argv) == 0
    cfg = parse(repo / "tiny")
    assert cfg.max_batch_size == 4 and cfg.backend == "onnxruntime"
    assert (repo / "tiny" / "1" / "model.onnx").read_bytes() == (out / "tiny.onnx").read_bytes()
    assert ModelCard.from_json(cfg.parameters[ONNX_METADATA_KEY].string_value) == ModelCard.load(out / "tiny.json")
    assert sorted(p.name for p in repo.iterdir()) == ["tiny"]  # no engine without TensorRT
    capsys.readouterr()
    assert be.main(argv) == 2  # the model is there: refused before any work
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds tiny: pass --force" in err
    assert be.main(["--checkpoint", str(tiny_ckpt), "--out", str(out), "--triton-max-batch", "4"]) == 2
    assert "are for --triton-repo: add it" in capsys.readouterr().err
    # on the target the build also wrote engines (stand-ins here: TensorRT is not installed): each is a
    # tensorrt model beside the graph's
    from export.options import build_parser, resolve
    from export.triton_repo import write_build

    (out / "tiny.fp16.engine").write_bytes(b"an FP16 engine")
    ModelCard.load(out / "tiny.json").replace(precision="fp16").save(out / "tiny.fp16.json")
    opts = resolve(build_parser().parse_args([*argv, "--fp16", "--force"]), argv_empty=False)
    assert [p.name for p in write_build(opts, None)] == ["tiny", "tiny_fp16"]
    cfg = parse(repo / "tiny_fp16")
    assert cfg.backend == "tensorrt" and cfg.max_batch_size == 4 and list(cfg.input[0].dims) == [4, 3, 64, 64]
    assert (repo / "tiny_fp16" / "1" / "model.plan").read_bytes() == b"an FP16 engine"
