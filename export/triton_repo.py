"""A Triton Inference Server model repository from a model this project wrote (docs/serving.md).

    tsi-triton-repo --model artifacts/demo/tsi_demo.onnx --out triton-repo
    tsi-triton-repo --model tsi_demo.fp16.engine --graph tsi_demo.onnx --out triton-repo   # on the target
    tsi-build-engine --dynamic-batch --triton-repo triton-repo                            # after a build

Writes ``<out>/<name>/config.pbtxt`` (:mod:`export.triton_config`: I/O from the graph, batching,
instances, the card in ``parameters``) and ``<out>/<name>/1/model.onnx`` (Triton's onnxruntime
backend) or ``model.plan`` (an engine: the tensorrt backend; its I/O is read from the ONNX graph it
was built from, ``--graph``). A clip model and an online step graph both: the step graph's state is
inputs and outputs, kept by the client per stream. A plugin engine needs ``--plugin LIB``: the
server loads the library itself (:func:`plugin_command`). The model folder is made under a
temporary name in ``<out>`` and renamed into place; an existing one is replaced only with
``--force``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from export.names import PRECISIONS, engine, plugin_graph, standard_graph
from export.triton_config import BACKENDS, ModelIO, ServingOptions, Tensor, add_serving_options, model_config, \
    model_config_text, serving_options
from runtime.backends.base import check_clip_io, resolve_card
from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.common.errors import ExportError
from runtime.step_graph import check_step_io

log = logging.getLogger("export.triton_repo")

__all__ = ["VERSION", "build_models", "check_build_targets", "graph_io", "main", "model_name", "plugin_command",
           "write_build", "write_model"]

VERSION = "1"  # the one version folder written
_TYPES = {1: "FP32", 10: "FP16"}  # onnx.TensorProto element type -> Triton data type


def model_name(path: Path) -> str:
    """The default Triton model name of a model file: its name without the suffix, dots as ``_``
    (``tsi_demo.fp16.engine`` -> ``tsi_demo_fp16``)."""
    return path.name[:-len(path.suffix)].replace(".", "_")


def graph_io(graph: Path) -> tuple[ModelIO, ModelCard | None, bool]:
    """The graph's inputs and outputs, the card in its metadata (None: none) and whether it has
    plugin nodes (the SaliencyAttention op: only TensorRT with the plugin library runs it)."""
    import onnx

    from export.plugin_graph import PLUGIN_OP

    try:
        proto = onnx.load(str(graph), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises DecodeError and others
        raise ExportError(f"cannot read the ONNX graph {graph}: {e}") from None
    init = {i.name for i in proto.graph.initializer}

    def tensors(values) -> tuple[Tensor, ...]:
        out = []
        for v in values:
            if v.name in init:
                continue
            t = v.type.tensor_type
            if t.elem_type not in _TYPES:
                raise ExportError(f"{graph}: {v.name} is {onnx.TensorProto.DataType.Name(t.elem_type)}; "
                                  "a served model's tensors are float32 or float16")
            out.append(Tensor(v.name, _TYPES[t.elem_type],
                              tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)))
        return tuple(out)

    meta = {p.key: p.value for p in proto.metadata_props}
    card = ModelCard.from_json(meta[ONNX_METADATA_KEY], f"{graph} (metadata_props)") \
        if ONNX_METADATA_KEY in meta else None
    plugin = any(n.op_type == PLUGIN_OP for n in proto.graph.node)
    return ModelIO(tensors(proto.graph.input), tensors(proto.graph.output)), card, plugin


def _check_io(path: Path, io: ModelIO, card: ModelCard, source: str) -> None:
    """The graph is what its card says: a clip graph or a step graph (the runtime's own checks)."""
    def dims(t: Tensor) -> list[int | None]:
        return [d if d > 0 else None for d in t.dims]

    if card.mode == "online":
        import numpy as np

        spec = {"FP32": np.float32, "FP16": np.float16}
        check_step_io(path, card, source, {t.name: (tuple(dims(t)), spec[t.dtype]) for t in io.inputs},
                      {t.name: (tuple(dims(t)), spec[t.dtype]) for t in io.outputs})
    else:
        check_clip_io(path, card, source, [(t.name, dims(t), t.dtype) for t in io.inputs],
                      [(t.name, dims(t), t.dtype) for t in io.outputs], ("FP32", "FP16"))


def plugin_command(repo: Path, plugin: Path) -> str:
    """How the server loads a plugin engine's library (Triton's tensorrt backend option; LD_PRELOAD
    does it for older servers)."""
    return f"tritonserver --model-repository {repo} --backend-config=tensorrt,plugins={plugin}"


def _replace_dir(staging: Path, target: Path) -> None:
    """``staging`` renamed onto ``target`` (an existing ``target`` moved aside first, then removed)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old)


def write_model(repo: Path, model: Path, *, graph: Path | None = None, name: str | None = None,
                opts: ServingOptions = ServingOptions(), plugin: Path | None = None, force: bool = False) -> Path:
    """``<repo>/<name>/`` for ``model`` (``.onnx``, or an engine with the ``graph`` it was built
    from); returns that folder. Raises :class:`ExportError` / :class:`CardError` naming the problem."""
    suffix = model.suffix.lower()
    if suffix not in BACKENDS:
        raise ExportError(f"{model}: a Triton model repository serves {', '.join(BACKENDS)} files")
    if not model.is_file():
        raise ExportError(f"model file not found: {model}")
    backend, file_name = BACKENDS[suffix]
    if backend == "tensorrt" and graph is None:
        raise ExportError(f"{model}: an engine's inputs and outputs are read from the ONNX graph it was built "
                          "from: pass --graph")
    if backend == "onnxruntime" and graph is not None and graph.resolve() != model.resolve():
        raise ExportError("--graph is for an engine; an .onnx model is its own graph")
    graph = graph or model
    if not graph.is_file():
        raise ExportError(f"ONNX graph not found: {graph}")
    io, embedded, has_plugin = graph_io(graph)
    card, source = resolve_card(model, embedded=embedded.to_json() if embedded and backend == "onnxruntime" else None)
    _check_io(model, io, card, source)
    if has_plugin and backend == "onnxruntime":
        raise ExportError(f"{graph} has plugin nodes only TensorRT runs: serve an engine built from it "
                          "(--model <engine> --graph ... --plugin LIB) or the standard graph")
    if has_plugin and plugin is None:
        raise ExportError(f"{model} is a plugin engine: pass --plugin LIB (the library the server loads)")
    if plugin is not None and not has_plugin:
        raise ExportError(f"--plugin: {graph} has no plugin nodes")
    name = name or model_name(model)
    if not name or "/" in name or name.startswith("."):
        raise ExportError(f"--name must be a plain model name (got {name!r})")
    cfg = model_config(name, backend, io, card, opts)
    if repo.exists() and not repo.is_dir():
        raise ExportError(f"--out {repo}: a file, not a folder")
    target = repo / name
    if target.exists() and not force:
        raise ExportError(f"{target} exists: pass --force to replace it, or choose another --name/--out")
    try:
        repo.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repo))
    except OSError as e:
        raise ExportError(f"--out {repo}: cannot write there ({e.strerror or e})") from None
    try:
        (staging / VERSION).mkdir()
        shutil.copyfile(model, staging / VERSION / file_name)
        (staging / "config.pbtxt").write_text(model_config_text(cfg), encoding="utf-8")
        staging.chmod(0o777 & ~_umask())
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("Triton model %s: %s (%s), max_batch_size %d, card %s", target, file_name, backend,
             cfg.max_batch_size, source)
    if plugin is not None:
        log.info("the server loads the plugin library: %s", plugin_command(repo, plugin))
    return target


def build_models(name: str, precisions=PRECISIONS) -> list[str]:
    """The model names a build of stem ``name`` writes into --triton-repo: ``<name>`` (the graph)
    and ``<name>_<precision>`` (each engine)."""
    return [name, *(f"{name}_{p}" for p in precisions)]


def check_build_targets(repo: Path, name: str, *, force: bool) -> None:
    """Before a build: its models in ``repo`` are not there (unless ``force``)."""
    if repo.exists() and not repo.is_dir():
        raise ExportError(f"--triton-repo {repo}: a file, not a folder")
    there = [m for m in build_models(name) if (repo / m).exists()]
    if there and not force:
        raise ExportError(f"--triton-repo {repo} holds {', '.join(there)}: pass --force to replace, or choose "
                          "another --triton-repo")


def write_build(opts, derived: str | None) -> list[Path]:
    """The models of a finished ``tsi-build-engine`` (its :class:`export.options.Options`) in
    ``opts.triton_repo``: the graph (the standard one, or an --onnx graph built as it is) and each
    engine in ``opts.out`` built from it (its I/O read from that graph; a plugin engine's from the
    plugin variant)."""
    graph = opts.out / standard_graph(opts.name) if derived is None else opts.onnx
    plugin_only = derived is not None and opts.plugin is not None  # an --onnx plugin variant: TensorRT only
    done = [] if plugin_only else [write_model(opts.triton_repo, graph, name=opts.name, opts=opts.triton,
                                               force=opts.force)]
    io_graph = opts.out / plugin_graph(graph) if opts.plugin is not None and derived is None else graph
    for precision in PRECISIONS:
        path = opts.out / engine(opts.name, precision)
        if path.is_file():
            done.append(write_model(opts.triton_repo, path, graph=io_graph, name=f"{opts.name}_{precision}",
                                    opts=opts.triton, plugin=opts.plugin, force=opts.force))
    return done


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsi-triton-repo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="an .onnx graph or a TensorRT engine (.engine/.plan)")
    p.add_argument("--graph", type=Path, help="an engine's ONNX graph (what it was built from)")
    p.add_argument("--out", type=Path, required=True, help="the model repository folder")
    p.add_argument("--name", help="the model's name in the repository (default: the file's stem, dots as _)")
    p.add_argument("--plugin", type=Path, metavar="LIB", help="a plugin engine's library, loaded by the server")
    p.add_argument("--force", action="store_true", help="replace <out>/<name> if it exists")
    add_serving_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        write_model(args.out, args.model, graph=args.graph, name=args.name, opts=serving_options(args),
                    plugin=args.plugin, force=args.force)
    except (ExportError, CardError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
