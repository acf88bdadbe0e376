"""What the OpenVINO backend changes in a model before compiling it for the CPU (every clip and step
model it compiles: ``openvino_backend.compile_model``).

1. Each long saliency attention -- MatMul -> Softmax (last axis) -> MatMul over at least
   ``cpu_attention.MIN_KEYS`` keys, float32, rank 3, head size <= the kernel's largest -- becomes one
   ``SaliencyAttention`` operation whose ``evaluate`` calls the project's C++ kernel
   (:mod:`runtime.kernels.cpu_attention`) on the tensors in place, reading through what only the
   chain reads: the export's scale of q and k (the kernel's scale then), and Transposes (0, 2, 1) of
   q, v or the output (the kernel reads and writes the channel-major feature maps: no transpose
   runs). OpenVINO's CPU plugin runs an operation it does not know through its ``evaluate``; its
   own MatMul-Softmax-MatMul writes the
   (L, L) scores through memory (TSI-R50's stage 1: 3136 x 3136 per frame pair).
2. Each ``VariadicSplit`` / ``Split`` with constant axis and lengths becomes one ``Gather`` (of
   the output's indices) per output: OpenVINO 2026.4's CPU plugin runs the frame splits of SME (8
   frames into 7 and 1) on its reference kernel, 37 ms of TSI-R50's clip (per-layer counters,
   benchmarks/results/cpu_backends.md); Slices were tried first, and its transformations merged them
   back into the same split.
3. Each temporal convolution of TIM / CTI (``tsi.modules.tim.TemporalConv``'s export form:
   Transpose (N, T, C, HW) -> (N, C, T, HW), a depthwise (3, 1) GroupConvolution padded by one frame,
   Transpose back) becomes w_0 x_{t-1} + w_1 x_t + w_2 x_{t+1} on the (N, T, C, HW) tensor itself
   (a Pad by one zero frame each side, two Slices, the conv's own weights per channel): the two
   transposes and the layout reorders OpenVINO put around them cost more than the conv
   (TSI-R50: TSI/TSN 0.847 against 0.839, one-off run of 11 alternating calls; onnxruntime, given the
   same form in the exported graph, was slower, so the export keeps the convolution).

Without the kernel (no compiler, ``TSI_CPU_ATTENTION=0``) step 1 is skipped, the model keeps its
attention, and step 2 still applies.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import numpy as np

from runtime.kernels import cpu_attention

log = logging.getLogger(__name__)

__all__ = ["Prepared", "prepare_for_cpu"]


@functools.lru_cache(maxsize=1)
def _op_class():
    """The ``SaliencyAttention`` OpenVINO operation (made once: it needs openvino, imported lazily)."""
    import openvino

    from runtime.kernels.cpu_attention import saliency_attention

    class SaliencyAttention(openvino.Op):
        """softmax(q k^T * scale) v on the C++ kernel; inputs q, k, v, each (B, L, D) or, named in
        the comma-separated attribute ``channel_major``, (B, D, L) (the kernel's layouts), likewise
        the output."""

        class_type_info = openvino.DiscreteTypeInfo("SaliencyAttention", "tsi")

        def __init__(self, inputs=None, channel_major: str = "", scale: float = 1.0):
            self._channel_major = str(channel_major)  # first: the base's __init__ infers the output type
            self._scale = float(scale)
            if inputs is None:
                super().__init__(self)
            else:
                super().__init__(self, inputs)

        def _names(self) -> tuple[str, ...]:
            return tuple(n for n in self._channel_major.split(",") if n)

        def _out_dims(self, q_dims):
            """The output's dimensions from q's: swapped where only one of them is channel-major."""
            names = self._names()
            b, x, y = q_dims
            return [b, x, y] if ("q" in names) == ("out" in names) else [b, y, x]

        def validate_and_infer_types(self):
            shape = self.get_input_partial_shape(0)
            if shape.rank.is_static:
                shape = openvino.PartialShape(self._out_dims(list(shape)))
            self.set_output_type(0, self.get_input_element_type(0), shape)

        def clone_with_new_inputs(self, new_inputs):
            return SaliencyAttention(new_inputs, self._channel_major, self._scale)

        def get_type_info(self):
            return SaliencyAttention.class_type_info

        def visit_attributes(self, visitor):
            visitor.on_attributes({"channel_major": self._channel_major, "scale": self._scale})
            return True

        def has_evaluate(self):
            return True

        def evaluate(self, outputs, inputs):
            q, k, v = (np.ascontiguousarray(t.data) for t in inputs)
            outputs[0].shape = self._out_dims(q.shape)
            saliency_attention(q, k, v, self._scale, out=outputs[0].data, channel_major=self._names())
            return True

    return SaliencyAttention


def _dims(port) -> list[int | None] | None:
    """The port's dimensions (None where dynamic: a dynamic batch), or None if its rank is dynamic."""
    shape = port.get_partial_shape()
    if not shape.rank.is_static:
        return None
    return [d.get_length() if d.is_static else None for d in shape]


def _consumers(output) -> list:
    return [t.get_node() for t in output.get_target_inputs()]


def _scaled_from(port):
    """(the input, the factor) of a Multiply by a one-element constant that makes ``port``, read by
    nothing else, or None."""
    node = port.get_node()
    if node.get_type_name() != "Multiply" or len(_consumers(node.output(0))) != 1:
        return None
    for i in (0, 1):
        factor = _const_values(node.input_value(1 - i))
        if factor is not None and len(factor) == 1:
            return node.input_value(i), float(factor[0])
    return None


def _swaps(node) -> bool:
    """A Transpose swapping the last two axes of a rank-3 tensor."""
    return node.get_type_name() == "Transpose" and _const_values(node.input_value(1)) == [0, 2, 1]


def _swapped_from(port):
    """The input of the Transpose swapping the last two axes that makes ``port``, read by nothing
    else, or None."""
    node = port.get_node()
    return node.input_value(0) if _swaps(node) and len(_consumers(node.output(0))) == 1 else None


def _long_attention(softmax):
    """(q, k, v, the names of those given channel-major, the scale, the last MatMul) of an attention
    chain ending at ``softmax``'s consumer, or None when it is not one the kernel takes. Read through
    where only the chain reads them: a Multiply of q or k by a one-element constant (the export's
    scale, then the kernel's), and a Transpose (0, 2, 1) making q or v (its input goes to the kernel
    as it is)."""
    mm1 = softmax.input_value(0).get_node()
    after = _consumers(softmax.output(0))
    if mm1.get_type_name() != "MatMul" or len(_consumers(mm1.output(0))) != 1 or len(after) != 1:
        return None
    mm2 = after[0]
    if mm2.get_type_name() != "MatMul" or mm2.input_value(0).get_node() is not softmax:
        return None
    a1, a2 = mm1.get_attributes(), mm2.get_attributes()
    if a1.get("transpose_a") or a2.get("transpose_a") or a2.get("transpose_b"):
        return None
    axis = softmax.get_attributes().get("axis", -1)
    q, kk, v = mm1.input_value(0), mm1.input_value(1), mm2.input_value(1)
    shapes = [_dims(p) for p in (q, kk, v)]
    if any(s is None or len(s) != 3 for s in shapes) or axis not in (-1, 2):
        return None
    if any(p.get_element_type().get_type_name() != "f32" for p in (q, kk, v)):
        return None
    transposed_b = bool(a1.get("transpose_b"))  # the MatMul transposes k itself: kk is k, else k^T
    (b, _, d), (bk, x, y), (bv, lv, dv) = shapes
    dk, lk = (y, x) if transposed_b else (x, y)
    if None not in (b, bk, bv) and not b == bk == bv:
        return None  # the batch may be dynamic (the kernel checks it per call)
    if not cpu_attention.hands_over(d, dk, dv, lk, lv):
        return None
    names, scale = [] if transposed_b else ["k"], 1.0  # k^T (B, D, Lk) is k channel-major
    for which in ("q", "k"):
        found = _scaled_from(q if which == "q" else kk)
        if found is not None:
            scale *= found[1]
            q, kk = (found[0], kk) if which == "q" else (q, found[0])
    source = _swapped_from(q)
    if source is not None:
        q = source
        names.append("q")
    source = _swapped_from(v)
    if source is not None:
        v = source
        names.append("v")
    return q, kk, v, names, scale, mm2


def _attention_on_kernel(model) -> int:
    found = [f for f in (_long_attention(n) for n in model.get_ordered_ops() if n.get_type_name() == "Softmax")
             if f is not None]
    if not found:
        return 0
    if not cpu_attention.available():  # asked only now: a model without long attentions never builds it
        log.info("OpenVINO keeps the MatMul attention: %s", cpu_attention.unavailable_reason())
        return 0
    op = _op_class()
    for q, kk, v, names, scale, mm2 in found:
        after = _consumers(mm2.output(0))
        back = after[0] if len(after) == 1 else None
        if back is not None and _swaps(back):
            back.output(0).replace(op([q, kk, v], ",".join([*names, "out"]), scale).output(0))  # written channel-major
        else:
            mm2.output(0).replace(op([q, kk, v], ",".join(names), scale).output(0))
    return len(found)


def _splits_as_gathers(model) -> int:
    import openvino.opset13 as ops

    count = 0
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind not in ("VariadicSplit", "Split"):
            continue
        data = node.input_value(0)
        rank = data.get_partial_shape().rank
        consts = [node.input_value(i).get_node() for i in range(1, node.get_input_size())]
        if not rank.is_static or any(c.get_type_name() != "Constant" for c in consts):
            continue
        axis = int(consts[0].get_data().reshape(-1)[0]) % rank.get_length()
        dim = data.get_partial_shape()[axis]
        if kind == "Split":
            if not dim.is_static:
                continue
            parts = node.get_output_size()
            lengths = [dim.get_length() // parts] * parts
        else:
            lengths = [int(n) for n in consts[1].get_data().reshape(-1)]
            if any(n < 0 for n in lengths):  # -1: the rest, known only with the dimension
                if not dim.is_static:
                    continue
                rest = dim.get_length() - sum(n for n in lengths if n >= 0)
                lengths = [rest if n < 0 else n for n in lengths]
        start = 0
        for i, n in enumerate(lengths):  # the same tensor, its indices along the axis
            piece = ops.gather(data, np.arange(start, start + n, dtype=np.int64), np.int64(axis))
            node.output(i).replace(piece.output(0))
            start += n
        count += 1
    return count


def _const_values(port) -> list | None:
    node = port.get_node()
    return node.get_data().reshape(-1).tolist() if node.get_type_name() == "Constant" else None


def _temporal_convs_as_shifts(model) -> int:
    import openvino.opset13 as ops

    swap = [0, 2, 1, 3]
    count = 0
    for conv in model.get_ordered_ops():
        if conv.get_type_name() != "GroupConvolution":
            continue
        a = conv.get_attributes()
        if (a.get("strides"), a.get("dilations"), a.get("pads_begin"), a.get("pads_end")) != ([1, 1], [1, 1], [1, 0], [1, 0]):
            continue
        before, after = conv.input_value(0).get_node(), _consumers(conv.output(0))
        if (before.get_type_name() != "Transpose" or _const_values(before.input_value(1)) != swap
                or len(_consumers(before.output(0))) != 1 or len(after) != 1 or after[0].get_type_name() != "Transpose"
                or _const_values(after[0].input_value(1)) != swap):
            continue
        weights, x = conv.input_value(1), before.input_value(0)  # (C, 1, 1, 3, 1); (N, T, C, HW)
        w_dims, x_dims = _dims(weights), _dims(x)
        if w_dims is None or None in w_dims or w_dims[1:] != [1, 1, 3, 1] or x_dims is None or len(x_dims) != 4 \
                or x_dims[1] is None:
            continue
        c, t = w_dims[0], x_dims[1]
        i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
        padded = ops.pad(x, i64(0, 1, 0, 0), i64(0, 1, 0, 0), "constant", np.float32(0))  # x_{-1} = x_T = 0
        prev = ops.slice(padded, i64(0), i64(t), i64(1), i64(1))
        nxt = ops.slice(padded, i64(2), i64(t + 2), i64(1), i64(1))
        w = [ops.reshape(ops.gather(weights, np.int64(k), np.int64(3)), i64(1, 1, c, 1), False) for k in range(3)]
        out = ops.add(ops.add(ops.multiply(prev, w[0]), ops.multiply(x, w[1])), ops.multiply(nxt, w[2]))
        after[0].output(0).replace(out.output(0))
        count += 1
    return count


class Prepared(NamedTuple):
    """What :func:`prepare_for_cpu` changed: how many of each."""

    attentions: int  # on the kernel
    splits: int  # as gathers
    temporal_convs: int  # as shifted sums


def prepare_for_cpu(model, *, kernel: bool = True) -> Prepared:
    """Rewrites ``model`` (an ``openvino.Model``, in place) as the module says (``kernel=False``:
    no attention on the kernel)."""
    done = Prepared(_attention_on_kernel(model) if kernel else 0, _splits_as_gathers(model),
                    _temporal_convs_as_shifts(model))
    if any(done):
        model.validate_nodes_and_infer_types()
        log.info("OpenVINO CPU: %d attention(s) on the kernel, %d split(s) as gathers, %d temporal conv(s) "
                 "as shifted sums", *done)
    return done
