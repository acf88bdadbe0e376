"""Will TensorRT 10.3 (JetPack 6.1/6.2) parse and build this ONNX graph? A static check, no TensorRT.

The op table is onnx-tensorrt's ``docs/operators.md`` for TensorRT 10.x, kept to ops that existed
by 10.3 (ops added later, e.g. ``Attention`` 10.14, ``RMSNormalization``/``RotaryEmbedding`` 10.15,
are left out), plus the rules of ``design/deployment.md``:

- opset 9..20 (10.x's parser range); Q/DQ graphs opset >= 13;
- ``ReduceX``/``Slice``/``Pad``/``Squeeze``/``Unsqueeze``/``CumSum``/``TopK``: axes (and K) must be
  constant (an initializer or a Constant node);
- no ``Einsum`` (partial before 10.12); no ``ScatterND``/``ScatterElements`` with a reduction;
- pooling 2D/3D only; ``Conv``/``ConvTranspose`` 1D/2D/3D (1D is unsqueezed to 2D) with constant
  weights; at most 8 dimensions per tensor;
- ``QuantizeLinear``/``DequantizeLinear``: scale constant and positive, zero point a constant int8
  0; per-tensor, except weights (constant input) per-channel on axis 0 feeding a Conv (or a Gemm
  with transB=1, whose axis 0 is also the output channel);
- custom ops only if listed in :data:`CUSTOM_OPS` (``SaliencyAttention`` with its attributes);
- ``dla=True``: every tensor shape static (DLA takes no dynamic shapes).

:func:`check_graph` returns every problem (node name, op type, reason); :func:`assert_trt_compatible`
raises :class:`runtime.common.errors.CompatibilityError` with all of them. CLI: ``python -m export.trt_check
model.onnx [--dla]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export.plugin_graph import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION
from runtime.common.errors import CompatibilityError
from runtime.trt_version import TARGET_TRT

log = logging.getLogger(__name__)

OPSET_RANGE = (9, 20)
QDQ_MIN_OPSET = 13
MAX_RANK = 8

SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GRU HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot
Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

REDUCE_OPS = frozenset(op for op in SUPPORTED_OPS if op.startswith("Reduce"))
POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})
# op -> (input index, what) that must be a build-time constant
CONSTANT_INPUTS = {
    "Slice": [(3, "axes")],
    "Pad": [(3, "axes")],
    "Squeeze": [(1, "axes")],
    "Unsqueeze": [(1, "axes")],
    "CumSum": [(1, "axis")],
    "TopK": [(1, "K")],
    **{op: [(1, "axes")] for op in REDUCE_OPS},
}


@dataclass(frozen=True)
class PluginSpec:
    """A custom op TensorRT builds from a plugin: its namespace/version and allowed attributes."""

    namespace: str
    version: str
    inputs: int
    outputs: int
    attributes: dict = field(default_factory=dict)  # name -> python type
    domains: tuple[str, ...] = ("", PLUGIN_DOMAIN)


CUSTOM_OPS = {
    PLUGIN_OP: PluginSpec(PLUGIN_NAMESPACE, PLUGIN_VERSION, 3, 1, {"plugin_namespace": str, "plugin_version": str,
                                                                  "scale": float}),
}


@dataclass(frozen=True)
class Problem:
    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.reason}"


class _Graph:
    """Lookups over one ONNX graph: constants, producers and consumers (onnx-graphsurgeon's, as
    :func:`calib.graph_maps.graph_maps` hands them), shapes."""

    def __init__(self, proto):
        import onnx

        from calib.graph_maps import graph_maps
        from onnx import numpy_helper

        self.proto = proto
        g = proto.graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.constants[n.output[0]] = numpy_helper.to_array(a.t)
                    elif a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                        self.constants[n.output[0]] = np.asarray(onnx.helper.get_attribute_value(a))
        self.producer, self.consumers = graph_maps(proto)
        try:
            inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
        except Exception as e:  # a custom op or a broken graph: check what is known
            log.debug("shape inference failed (%s); checking declared shapes only", e)
            inferred = proto
        ig = inferred.graph
        self.types = {}
        for vi in list(ig.input) + list(ig.output) + list(ig.value_info):
            if vi.type.HasField("tensor_type"):
                self.types[vi.name] = vi.type.tensor_type
        self.graph_io = {vi.name for vi in list(g.input) + list(g.output)} - set(self.constants)

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def rank(self, name: str) -> int | None:
        t = self.types.get(name)
        return len(t.shape.dim) if t is not None and t.HasField("shape") else None

    def dims(self, name: str):
        t = self.types.get(name)
        if t is None or not t.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _node_label(node, index: int) -> str:
    return node.name or f"<unnamed node #{index} -> {node.output[0] if node.output else '?'}>"


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _check_qdq(node, g: _Graph, add) -> None:
    scale_name = node.input[1] if len(node.input) > 1 else ""
    if not g.is_constant(scale_name):
        add("scale must be a constant (initializer)")
        scale = None
    else:
        scale = np.asarray(g.constants[scale_name])
        if scale.size == 0 or not np.all(scale > 0):
            add("scale must be positive")
    if len(node.input) < 3 or not node.input[2]:
        add("zero point missing (the default is uint8; TensorRT needs an explicit int8 zero point 0)")
    elif not g.is_constant(node.input[2]):
        add("zero point must be a constant")
    else:
        zp = np.asarray(g.constants[node.input[2]])
        if zp.dtype != np.int8:
            add(f"zero point must be int8 (got {zp.dtype})")
        if np.any(zp != 0):
            add(f"zero point must be 0 (symmetric), got {zp.reshape(-1)[:4].tolist()}")
    if scale is not None and scale.size > 1:
        axis = _attr(node, "axis", 1)
        x = node.input[0]
        x_const = g.is_constant(x) or (x in g.producer and g.producer[x].op_type == "QuantizeLinear"
                                       and g.is_constant(g.producer[x].input[0]))
        if not x_const:
            add("per-channel scale on an activation (activations must be per-tensor)")
            return
        rank = np.asarray(g.constants[x]).ndim if g.is_constant(x) else \
            np.asarray(g.constants[g.producer[x].input[0]]).ndim
        if axis not in (0, -rank):
            add(f"per-channel weights must use axis 0 (got axis={axis})")
        if node.op_type == "DequantizeLinear":
            for c in g.consumers.get(node.output[0], []):
                ok = (c.op_type == "Conv" and list(c.input).index(node.output[0]) == 1) or \
                     (c.op_type == "Gemm" and _attr(c, "transB", 0) == 1 and c.input[1] == node.output[0])
                if not ok:
                    add(f"per-channel weights feed {c.op_type} '{c.name}', only Conv weights (axis 0) "
                        "or Gemm transB=1 weights may be per-channel")


def _check_custom(node, spec: PluginSpec, add) -> None:
    from onnx import helper

    if node.domain not in spec.domains:
        add(f"domain {node.domain!r} (expected one of {spec.domains})")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for k, v in list(attrs.items()):
        if isinstance(v, bytes):
            attrs[k] = v.decode()
    if attrs.get("plugin_namespace") != spec.namespace:
        add(f"plugin_namespace must be {spec.namespace!r} (TensorRT {TARGET_TRT} reads the namespace from this "
            f"attribute), got {attrs.get('plugin_namespace')!r}")
    if attrs.get("plugin_version") != spec.version:
        add(f"plugin_version must be {spec.version!r}, got {attrs.get('plugin_version')!r}")
    for k, v in attrs.items():
        if k not in spec.attributes:
            add(f"unknown attribute {k!r} (the plugin creator takes {sorted(spec.attributes)})")
        elif not isinstance(v, spec.attributes[k]):
            add(f"attribute {k!r} must be {spec.attributes[k].__name__}, got {type(v).__name__}")
    if len(node.input) != spec.inputs or len(node.output) != spec.outputs:
        add(f"takes {spec.inputs} inputs and {spec.outputs} output(s), got {len(node.input)}/{len(node.output)}")


def check_graph(proto, *, dla: bool = False, custom_ops: dict | None = None) -> list[Problem]:
    """Every reason TensorRT 10.3 (``dla``: on DLA with GPU fallback) would reject ``proto``."""
    custom_ops = CUSTOM_OPS if custom_ops is None else custom_ops
    g = _Graph(proto)
    problems: list[Problem] = []
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        problems.append(Problem("<model>", "opset", f"ai.onnx opset {opset} outside TensorRT {TARGET_TRT}'s "
                                f"range {OPSET_RANGE[0]}..{OPSET_RANGE[1]}"))
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    if has_qdq and (opset or 0) < QDQ_MIN_OPSET:
        problems.append(Problem("<model>", "opset", f"Q/DQ needs opset >= {QDQ_MIN_OPSET} (got {opset})"))

    for i, node in enumerate(proto.graph.node):
        label, op = _node_label(node, i), node.op_type

        def add(reason: str, label=label, op=op) -> None:
            problems.append(Problem(label, op, reason))

        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            spec = custom_ops.get(op)
            if spec is None:
                add(f"not an op TensorRT {TARGET_TRT}'s ONNX parser takes, and not a listed plugin")
            else:
                _check_custom(node, spec, add)
            continue
        if op == "Einsum":
            add("Einsum: avoid (partial support before TensorRT 10.12); use MatMul/Transpose")
        if op in ("ScatterND", "ScatterElements") and _attr(node, "reduction", b"none") not in (b"none", "none"):
            add(f"{op} with reduction={_attr(node, 'reduction')!r} is not supported")
        for idx, what in CONSTANT_INPUTS.get(op, []):
            if len(node.input) > idx and node.input[idx] and not g.is_constant(node.input[idx]):
                add(f"{what} must be a constant (initializer), got the computed tensor '{node.input[idx]}'")
        if op in POOL_OPS:
            k = _attr(node, "kernel_shape", [])
            if len(k) not in (2, 3):
                add(f"{len(k)}D pooling: TensorRT pools in 2D or 3D only")
        if op in ("Conv", "ConvTranspose"):
            w = node.input[1] if len(node.input) > 1 else ""
            wr = g.rank(w) or (np.asarray(g.constants[w]).ndim if g.is_constant(w) else None)
            if wr is not None and wr - 2 not in (1, 2, 3):
                add(f"{wr - 2}D convolution: TensorRT takes 1D/2D/3D")
            w_src = g.producer.get(w)
            w_ok = g.is_constant(w) or (w_src is not None and w_src.op_type == "DequantizeLinear" and (
                g.is_constant(w_src.input[0]) or (w_src.input[0] in g.producer and
                                                  g.producer[w_src.input[0]].op_type == "QuantizeLinear" and
                                                  g.is_constant(g.producer[w_src.input[0]].input[0]))))
            if not w_ok:
                add("weights must be an initializer (or a DequantizeLinear of one)")
        if op in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq(node, g, add)
        for out in node.output:
            r = g.rank(out)
            if r is not None and r > MAX_RANK:
                add(f"output '{out}' has {r} dimensions (TensorRT takes at most {MAX_RANK})")

    if dla:
        problems += _dla_static_shapes(proto, g)
    return problems


def _dla_static_shapes(proto, g: _Graph) -> list[Problem]:
    """DLA needs static shapes: every graph input/output; when those are static, also every
    intermediate tensor (a dynamic one then comes from a data-dependent op, named here)."""
    def dynamic(name: str):
        dims = g.dims(name)
        return dims is not None and any(not isinstance(d, int) or d <= 0 for d in dims), dims

    problems = []
    for kind, vis in (("input", proto.graph.input), ("output", proto.graph.output)):
        for vi in vis:
            if vi.name in g.constants:
                continue
            is_dyn, dims = dynamic(vi.name)
            if is_dyn:
                problems.append(Problem(f"<graph {kind} {vi.name}>", kind, f"dynamic shape {dims}: DLA needs "
                                        "static shapes (export without --dynamic-batch)"))
    if problems:
        return problems
    index = {id(n): i for i, n in enumerate(proto.graph.node)}
    for name in sorted(g.types):
        is_dyn, dims = dynamic(name)
        src = g.producer.get(name)
        if is_dyn and src is not None:
            problems.append(Problem(_node_label(src, index[id(src)]), src.op_type,
                                    f"output '{name}' has a dynamic shape {dims}: DLA needs static shapes"))
    return problems


def assert_trt_compatible(model, *, dla: bool = False, source: str | None = None) -> None:
    """Raise :class:`CompatibilityError` listing every problem of ``model`` (a path or ModelProto)."""
    if isinstance(model, (str, os.PathLike)):
        from export.onnx_export import load_onnx

        source = source or str(model)
        model = load_onnx(model, check=False)
    problems = check_graph(model, dla=dla)
    if problems:
        raise CompatibilityError(source or "ONNX model", problems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.trt_check",
                                 description=f"Check ONNX graphs against TensorRT {TARGET_TRT}'s ONNX parser.")
    ap.add_argument("onnx", nargs="+", type=Path)
    ap.add_argument("--dla", action="store_true", help="also require static shapes (DLA)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from runtime.common.errors import ExportError

    bad = 0
    for path in args.onnx:
        try:
            assert_trt_compatible(path, dla=args.dla)
            log.info("%s: OK for TensorRT %s%s", path, TARGET_TRT, " (DLA)" if args.dla else "")
        except ExportError as e:
            log.error("%s", e)
            bad += 1
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
