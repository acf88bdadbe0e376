"""Build a serialized TensorRT engine from one of the ONNX graphs.

Written from the TensorRT 10.x Python API documentation and samples (``trt.Builder``,
``OnnxParser.parse_from_file``, ``IBuilderConfig``, ``build_serialized_network``); TensorRT cannot be
installed on the machines of this project, so this module is NOT executed by the test suite (the
tests that would run it are marked ``trt``). Every version split goes through
:mod:`runtime.trt_version`:

- 10.x: FP16/INT8 by ``BuilderFlag`` on a weakly typed network (the Q/DQ graph sets INT8, FP16
  lets its float layers run in half); Softmax and the attention MatMuls pinned to FP32 with
  ``OBEY_PRECISION_CONSTRAINTS``; implicit INT8 from a keyed calibration cache (``calibration``).
- 11.x: a strongly typed network: the FP16 graph's own types, the Q/DQ graph's INT8.
- Plugins: the library is loaded with ``ctypes.CDLL`` (RTLD_GLOBAL; its ``REGISTER_TENSORRT_PLUGIN``
  registers the creator) and the creator is looked up in the registry before parsing.
- DLA: default device DLA, ``GPU_FALLBACK``, FP16/INT8 only, static shapes.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from runtime.common.errors import ExportError
from export.plugin_graph import PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION
from runtime.trt_version import capabilities, import_tensorrt
from runtime.card import ModelCard, card_path_for
from runtime.common.files import atomic_write_bytes

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 1024
DEFAULT_BATCH_PROFILE = (1, 1, 8)  # (min, opt, max) batch of a dynamic batch axis


@dataclass
class EngineSpec:
    onnx_path: Path
    engine_path: Path
    precision: str  # fp32 | fp16 | int8
    card: ModelCard
    implicit_int8: bool = False  # INT8 from a calibration cache (10.x, DLA) instead of Q/DQ
    calib_cache: Path | None = None
    onnx_sha256: str = ""
    plugin_lib: Path | None = None
    dla_core: int | None = None
    timing_cache: Path | None = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    batch_profile: tuple[int, int, int] | None = None  # (min, opt, max) for a dynamic batch axis
    fp32_layers: list[str] = field(default_factory=list)  # ONNX node names kept in FP32 (attention)


def load_plugin_library(trt, logger, lib: Path) -> None:
    """Load the plugin library and check the SaliencyAttention creator is registered."""
    if not Path(lib).is_file():
        raise ExportError(f"plugin library not found: {lib}")
    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    trt.init_libnvinfer_plugins(logger, "")
    creator = trt.get_plugin_registry().get_creator(PLUGIN_OP, PLUGIN_VERSION, PLUGIN_NAMESPACE)
    if creator is None:
        raise ExportError(f"{lib} loaded, but no plugin creator {PLUGIN_NAMESPACE}::{PLUGIN_OP} v{PLUGIN_VERSION} "
                          "is registered (was it built against this TensorRT?)")
    log.info("plugin %s::%s v%s from %s", PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION, lib)


def _parse(trt, builder, logger, spec: EngineSpec, strongly_typed: bool):
    flags = 0
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)  # explicit batch is the only mode from 10.0
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT's ONNX parser rejected {spec.onnx_path}:\n  - " + "\n  - ".join(errors))
    return network, parser


def _pin_fp32(trt, network, names: list[str]) -> int:
    """Weakly typed builds: keep Softmax and the attention MatMuls in FP32."""
    pinned, wanted = 0, set(names)
    for i in range(network.num_layers):
        layer = network.get_layer(i)  # the ONNX parser names a node's layer after the node
        if layer.type == trt.LayerType.SOFTMAX or layer.name in wanted:
            layer.precision = trt.float32
            for o in range(layer.num_outputs):
                layer.set_output_type(o, trt.float32)
            pinned += 1
    return pinned


def _cache_calibrator(trt, data: bytes):
    """An entropy calibrator that only hands TensorRT a (checked) cache: no clips needed."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None  # TensorRT asks only if the cache is unusable: then calibration fails loudly

        def read_calibration_cache(self):
            return data

        def write_calibration_cache(self, cache):
            pass

    return CacheCalibrator()


def build_engine(spec: EngineSpec) -> Path:
    """Build, serialize atomically to ``spec.engine_path`` (card JSON beside it), log every I/O."""
    trt = import_tensorrt()
    caps = capabilities(trt.__version__)
    try:
        route = caps.precision_route(spec.precision, implicit_int8=spec.implicit_int8)
    except ValueError as e:  # e.g. a calibration cache on TensorRT 11
        raise ExportError(str(e)) from None
    logger = trt.Logger(trt.Logger.WARNING)
    if spec.plugin_lib is not None:
        load_plugin_library(trt, logger, spec.plugin_lib)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, spec, strongly_typed=(route == "strongly_typed"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec.workspace_mib) << 20)
    if route in ("flags", "calibration"):
        config.set_flag(trt.BuilderFlag.FP16)
        if spec.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        if _pin_fp32(trt, network, spec.fp32_layers):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    if route == "calibration":
        from calib.cache import load_cache

        if spec.calib_cache is None:
            raise ExportError("implicit INT8 needs a calibration cache")
        config.int8_calibrator = _cache_calibrator(trt, load_cache(spec.calib_cache, onnx_sha256=spec.onnx_sha256,
                                                                   version_int=caps.version_int))
    if spec.dla_core is not None:
        if spec.precision == "fp32":
            raise ExportError("DLA runs FP16 or INT8 only: add --fp16 or --int8")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(spec.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    dynamic = [network.get_input(i) for i in range(network.num_inputs) if any(d < 0 for d in network.get_input(i).shape)]
    if dynamic:  # a clip graph's one input, or every input of a dynamic-batch step graph: one profile
        lo, opt, hi = spec.batch_profile or DEFAULT_BATCH_PROFILE
        profile = builder.create_optimization_profile()
        for inp in dynamic:
            rest = tuple(inp.shape)[1:]
            profile.set_shape(inp.name, (lo, *rest), (opt, *rest), (hi, *rest))
        config.add_optimization_profile(profile)
    timing = None
    if spec.timing_cache is not None:
        blob = Path(spec.timing_cache).read_bytes() if Path(spec.timing_cache).is_file() else b""
        timing = config.create_timing_cache(blob)
        config.set_timing_cache(timing, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build {spec.engine_path.name} (see the TensorRT log above)")
    atomic_write_bytes(spec.engine_path, bytes(serialized))
    spec.card.replace(precision=spec.precision).save(card_path_for(spec.engine_path))
    if timing is not None:
        atomic_write_bytes(Path(spec.timing_cache), bytes(config.get_timing_cache().serialize()))
    log_engine_io(trt, logger, bytes(serialized), spec.engine_path)
    return spec.engine_path


def log_engine_io(trt, logger, serialized: bytes, name: os.PathLike) -> list[tuple]:
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    rows = []
    for i in range(engine.num_io_tensors):
        t = engine.get_tensor_name(i)
        rows.append((t, str(engine.get_tensor_mode(t)), tuple(engine.get_tensor_shape(t)),
                     str(engine.get_tensor_dtype(t))))
        log.info("%s: %s %s shape=%s dtype=%s", Path(name).name, rows[-1][1], t, rows[-1][2], rows[-1][3])
    return rows
