"""The names of everything the export writes, and the ONNX opset it writes them in, stated once.

Clip build (``export.build_engine``), for a file stem ``<n>``::

    <n>.onnx  <n>.json                     the standard graph and its card
    <n>.plugin.onnx                        its plugin variant (any graph: <graph>.plugin.onnx)
    <n>.fp16.onnx  <n>.int8.qdq.onnx       the precision graphs (and their .plugin variants)
    <n>.int8.calib.cache(.json)            the keyed calibration cache (the key: calib.cache.key_path)
    <n>.int8.cpu.xml/.bin  <n>.int8.cpu.json   INT8 for CPUs (--int8-target cpu): OpenVINO IR and its card
    <n>.<precision>.engine  <n>.<precision>.json   engines and their cards
    calib_videos/                          the demo's synthetic calibration videos

Online export (``export.stream_export``): the same names with the stem ``<n>.online``
(:func:`online_stem`), so its engines are ``<n>.online.<precision>.engine``.
"""

from __future__ import annotations

from pathlib import Path

from calib.cache import key_path
from runtime.card import card_path_for

OPSET = 17  # ai.onnx opset of every graph this project exports (TensorRT 10.x's parser: 9..20)

ONNX_SUFFIX = ".onnx"
CARD_SUFFIX = card_path_for("x.onnx").suffix  # a card beside its model (runtime.card)
PLUGIN_TAG = ".plugin"  # <graph>.plugin.onnx
ONLINE_TAG = ".online"  # <n>.online*: a step graph and what is built from it
PRECISION_GRAPH_TAGS = {"fp16": ".fp16", "int8": ".int8.qdq"}  # <n><tag>.onnx
CALIB_CACHE_SUFFIX = ".int8.calib.cache"
ENGINE_SUFFIX = ".engine"
CPU_INT8_TAG = ".int8.cpu"  # <n>.int8.cpu.xml: the OpenVINO IR NNCF quantized for CPUs (export.cpu_int8)
IR_SUFFIX, IR_WEIGHTS_SUFFIX = ".xml", ".bin"  # an OpenVINO IR: the graph and its weights beside it
DEMO_CALIB_VIDEOS = "calib_videos"  # the demo's synthetic calibration videos, a folder in --out


def demo_calibration_videos(folder: Path) -> Path:
    """Where the demo's calibration clips are read from in ``folder`` (--out or its staging folder):
    the training split of :data:`DEMO_CALIB_VIDEOS`."""
    return folder / DEMO_CALIB_VIDEOS / "train"
PRECISIONS = ("fp32", "fp16", "int8")


def online_stem(name: str) -> str:
    """The file stem of a model's online (step-graph) outputs."""
    return name + ONLINE_TAG


def stem_of(path: Path) -> str:
    """The stem of an output of this tool: ``m.int8.qdq.onnx`` -> ``m``; a step graph's keeps its
    tag (``m.online.fp16.onnx`` -> ``m.online``)."""
    stem = path.name.split(".")[0]
    return online_stem(stem) if f"{ONLINE_TAG}." in path.name else stem


def standard_graph(name: str) -> str:
    return name + ONNX_SUFFIX


def card_file(name: str) -> str:
    return name + CARD_SUFFIX


def precision_graph(name: str, precision: str) -> str:
    """``<n>.fp16.onnx`` / ``<n>.int8.qdq.onnx``."""
    return name + PRECISION_GRAPH_TAGS[precision] + ONNX_SUFFIX


def plugin_graph(graph: str | Path) -> str:
    """The plugin variant's file name beside ``graph`` (``m.fp16.onnx`` -> ``m.fp16.plugin.onnx``)."""
    name = Path(graph).name
    return name[:-len(ONNX_SUFFIX)] + PLUGIN_TAG + ONNX_SUFFIX


def calib_cache(name: str) -> str:
    return name + CALIB_CACHE_SUFFIX


def cpu_int8_ir(name: str) -> str:
    """``<n>.int8.cpu.xml`` (its weights: :func:`ir_weights`, its card: ``runtime.card.card_path_for``)."""
    return name + CPU_INT8_TAG + IR_SUFFIX


def ir_weights(xml: str | Path) -> str:
    """The weights file beside an IR ``.xml``."""
    return Path(xml).with_suffix(IR_WEIGHTS_SUFFIX).name


def engine(name: str, precision: str) -> str:
    return f"{name}.{precision}{ENGINE_SUFFIX}"


def engine_card(name: str, precision: str) -> str:
    return card_path_for(engine(name, precision)).name


def standard_beside(graph: Path) -> Path:
    """The standard graph ``<n>.onnx`` beside a precision graph ``<n>.int8.qdq.onnx`` (or ``<n>.fp16.onnx``)."""
    for tag in PRECISION_GRAPH_TAGS.values():
        if graph.name.endswith(tag + ONNX_SUFFIX):
            return graph.with_name(graph.name[:-len(tag + ONNX_SUFFIX)] + ONNX_SUFFIX)
    return graph


def output_names(name: str) -> list[str]:
    """Every file a build for stem ``name`` may write (checked against --out before any work)."""
    graphs = [standard_graph(name), *(precision_graph(name, p) for p in PRECISION_GRAPH_TAGS)]
    cache, ir = calib_cache(name), cpu_int8_ir(name)
    return [graphs[0], card_file(name), *(plugin_graph(g) for g in graphs[:1]),
            *(n for g in graphs[1:] for n in (g, plugin_graph(g))), cache, key_path(Path(cache)).name,
            ir, ir_weights(ir), card_path_for(ir).name,
            *(n for p in PRECISIONS for n in (engine(name, p), engine_card(name, p)))]
