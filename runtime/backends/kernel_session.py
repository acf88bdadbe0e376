"""onnxruntime on a CPU with the saliency attentions on the project's C++ kernel
(:mod:`runtime.kernels.cpu_attention`): what :func:`runtime.backends.onnxruntime_backend.open_session`
opens for the CPU provider when the kernel is available.

onnxruntime's MatMul-Softmax-MatMul writes and reads the (L, L) scores of every frame pair through
memory (TSI-R50 at 224²: 3136 x 3136 per pair at stage 1), the kernel keeps one row in L1. Each
attention chain (:func:`runtime.attention_graph.find_attention`) whose q, k^T and v are float32
(B, L, D) with D <= the kernel's largest head goes to the kernel, one of two ways:

- in the graph, where the kernel's onnxruntime operation builds (:mod:`runtime.kernels.ort_op`: it
  needs onnxruntime's C API header), those over ``cpu_attention.MIN_KEYS`` keys, as OpenVINO's:
  each chain becomes one node of that operation (:func:`with_kernel_nodes`) and the model one
  ``InferenceSession`` with the operation's library registered, its attribute ``chains`` the chains
  it took. onnxruntime keeps its blocked layout for everything else. The same library's CTI
  operation takes each CTI unit of the export's clip form (:mod:`runtime.backends.cti_graph`; the
  attribute ``cti_units``), so a TSI graph without long attentions (the demo's 64²) opens this way
  too;
- otherwise cut around it (:class:`KernelSession`), those over :data:`CUT_MIN_KEYS` keys: the
  pieces between the cuts run as onnxruntime sessions, the chains on the kernel through ctypes, and
  the tensors pass from piece to piece as onnxruntime values bound in place (IO binding: no copy; a
  tensor is let go after its last use).
  Each cut hands the feature maps living across it back in NCHW (onnxruntime's ReorderOutput, and
  ReorderInput in the next piece: benchmarks/results/cpu_backends.md profiles both ways).
  The session answers ``run``, ``get_inputs``, ``get_outputs``, ``get_modelmeta`` and
  ``get_providers`` as an ``onnxruntime.InferenceSession`` does, so the clip backend and the online
  step model use it unchanged.

Both take the session options handed in (``onnxruntime_backend.session_options``). Without ``onnx``
(the ``runtime`` extra installs it), without the kernel (no compiler, or ``TSI_CPU_ATTENTION=0``) or
with no chain to route, :func:`kernel_session` returns None and the caller opens the plain session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from runtime.attention_graph import AttentionMatch, find_attention, proto_nodes, proto_ranks
from runtime.backends.cti_graph import find_cti, with_cti_nodes
from runtime.backends.graph_index import GraphIndex

log = logging.getLogger(__name__)

__all__ = ["KernelSession", "kernel_session", "with_kernel_nodes"]

FLOAT = 1  # onnx TensorProto.FLOAT
# The fewest keys of an attention the graph is cut at: above cpu_attention.MIN_KEYS, because each cut
# hands the feature maps that live across it back in NCHW; on TSI-R50 at 224² (AMD EPYC, 1 thread,
# quiet) the cuts at stage 2's 784 keys cost more than the kernel saves there: TSI/TSN 0.775 with
# them, 0.788 without. In the graph (no handover) stage 2 on the kernel was a little ahead in one-off
# runs of alternating calls: TSI/TSN 0.891, 0.843, 0.828, 0.848 with it, 0.876, 0.846, 0.829, 0.834
# without.
CUT_MIN_KEYS = 1024


@dataclass
class _Piece:
    session: object | None  # the onnxruntime session of the nodes before the cut (None: no nodes)
    inputs: list[str]
    outputs: list[str]
    chain: AttentionMatch | None  # the attention computed after it (None: the last piece)
    release: list[str] = field(default_factory=list)  # tensors not needed after this piece


def _dims(value_info) -> list[int | str | None] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _routed(m: AttentionMatch, infos: dict, min_keys: int = 0) -> bool:
    """A chain the kernel takes: float32 q (B, Lq, D), k^T (B, D, Lk), v (B, Lk, D) of the shapes
    ``cpu_attention.hands_over`` accepts (over ``min_keys`` keys at least)."""
    from runtime.kernels.cpu_attention import hands_over

    shapes = [_dims(infos[n]) if n in infos else None for n in (m.q, m.k_transposed, m.v)]
    if any(s is None or len(s) != 3 for s in shapes) or any(
            infos[n].type.tensor_type.elem_type != FLOAT for n in (m.q, m.k_transposed, m.v)):
        return False
    (_, _, d), (_, dk, lk), (_, lv, dv) = shapes
    return hands_over(d, dk, dv, lk, lv, min_keys=min_keys)


def _type_name(value_info) -> str:
    import onnx

    return f"tensor({onnx.TensorProto.DataType.Name(value_info.type.tensor_type.elem_type).lower()})"


class KernelSession:
    """An ONNX graph on onnxruntime's CPU provider with its long attentions on the kernel."""

    def __init__(self, proto, chains: list[AttentionMatch], options) -> None:
        """``options``: the ``onnxruntime.SessionOptions`` every piece opens with."""
        import onnx
        import onnxruntime as ort

        self._ort = ort
        g = proto.graph
        infos = {v.name: v for v in (*g.input, *g.output, *g.value_info)}
        inits = {i.name: i for i in g.initializer}
        by_last = {c.matmul_pv: c for c in chains}
        skip = {n for c in chains for n in (c.matmul_qk, c.softmax)}
        groups, current = [], []
        for node in g.node:
            if node.name in by_last:
                groups.append((current, by_last[node.name]))
                current = []
            elif node.name not in skip:
                current.append(node)
        groups.append((current, None))
        needed_after, needs = {o.name for o in g.output}, []
        for nodes, chain in reversed(groups):
            needs.append(set(needed_after))
            needed_after |= {i for n in nodes for i in n.input if i}
            if chain is not None:
                needed_after |= {chain.q, chain.k_transposed, chain.v}
        needs.reverse()  # needs[s]: what is read after piece s and its chain
        opsets = [o for o in proto.opset_import if o.domain in ("", "ai.onnx")]
        self._pieces, held = [], {i.name for i in g.input}
        for s, (nodes, chain) in enumerate(groups):
            produced = {o for n in nodes for o in n.output}
            used = list(dict.fromkeys(i for n in nodes for i in n.input if i))
            ins = [i for i in used if i not in produced and i not in inits]
            wanted = needs[s] | ({chain.q, chain.k_transposed, chain.v} if chain else set())
            outs = [o for o in dict.fromkeys(o for n in nodes for o in n.output) if o in wanted]
            session = None
            if nodes:
                sub = onnx.helper.make_graph(
                    nodes, f"{g.name}_piece{s}", [infos.get(i) or onnx.helper.make_empty_tensor_value_info(i) for i in ins],
                    [infos.get(o) or onnx.helper.make_empty_tensor_value_info(o) for o in outs],
                    [inits[i] for i in used if i in inits])
                model = onnx.helper.make_model(sub, opset_imports=opsets, ir_version=proto.ir_version)
                session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            held |= set(outs) | ({chain.output} if chain else set())
            release = sorted(t for t in held if t not in needs[s])
            held -= set(release)
            self._pieces.append(_Piece(session, ins, outs, chain, release))
        self._inputs = [self._arg(v) for v in g.input if v.name not in inits]
        self._outputs = [self._arg(v) for v in g.output]
        self._meta = SimpleNamespace(custom_metadata_map={p.key: p.value for p in proto.metadata_props},
                                     producer_name=proto.producer_name, graph_name=g.name)
        self.chains = chains
        self.cti_units = []  # the CTI operation is in-graph only

    @staticmethod
    def _arg(value_info):
        return SimpleNamespace(name=value_info.name, shape=_dims(value_info) or [], type=_type_name(value_info))

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_modelmeta(self):
        return self._meta

    @property
    def sessions(self) -> list:
        """The onnxruntime sessions of the pieces, in order (for their profiles)."""
        return [p.session for p in self._pieces if p.session is not None]

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]

    def run(self, output_names, feed: dict) -> list[np.ndarray]:
        from runtime.kernels.cpu_attention import saliency_attention

        value = self._ort.OrtValue.ortvalue_from_numpy
        env = {name: value(np.ascontiguousarray(a)) for name, a in feed.items()}
        for piece in self._pieces:
            if piece.session is not None:
                binding = piece.session.io_binding()
                for name in piece.inputs:
                    binding.bind_ortvalue_input(name, env[name])
                for name in piece.outputs:
                    binding.bind_output(name, "cpu")
                piece.session.run_with_iobinding(binding)
                env.update(zip(piece.outputs, binding.get_outputs()))
            if piece.chain is not None:
                c = piece.chain
                q, kt, v = (env[n].numpy() for n in (c.q, c.k_transposed, c.v))
                out = saliency_attention(np.ascontiguousarray(q), np.ascontiguousarray(np.swapaxes(kt, 1, 2)),
                                         np.ascontiguousarray(v), 1.0)
                env[c.output] = value(out)
            for name in piece.release:
                env.pop(name, None)
        names = output_names or [o.name for o in self._outputs]
        # numpy() of an onnxruntime-allocated value is a view that does not keep the value alive
        return [np.array(env[n].numpy(), copy=True) for n in names]


def _swapped(node) -> bool:
    """A Transpose swapping the last two axes of a rank-3 tensor."""
    return node.op_type == "Transpose" and next((list(a.ints) for a in node.attribute if a.name == "perm"), None) == [0, 2, 1]


def with_kernel_nodes(proto, chains: list[AttentionMatch]):
    """A copy of ``proto`` with each chain one node of the kernel's onnxruntime operation in the place
    of its last MatMul, and the operation's domain imported. Its inputs are q, k^T and v, read through
    what only the chain reads: a Mul of q or k^T by a one-element constant (the export's scale, then
    the kernel's ``scale`` attribute) and a Transpose (0, 2, 1) (its input is the feature map's own
    channel-major layout); its output is the chain's, or that of a Transpose (0, 2, 1) that alone
    reads it (the ``layout`` attribute says which are channel-major; what was read through is
    dropped)."""
    import onnx

    from runtime.kernels.cpu_attention import LAYOUT_BITS
    from runtime.kernels.ort_op import names

    domain, op = names()
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    g = out.graph
    index = GraphIndex(g)
    nodes, producer, readers = index.nodes, index.producer, index.readers
    at = {n.name: i for i, n in enumerate(nodes) if n.name}

    def only_reader(name, reader) -> int | None:  # the node making ``name`` when ``reader`` alone reads it
        made_by = producer.get(name)
        return made_by if made_by is not None and readers.get(name) == [reader] and name not in index.outputs else None

    drop, kernels = {at[n] for c in chains for n in (c.matmul_qk, c.softmax)}, {}
    for c in chains:
        layout, ins, scale = 0, [], 1.0
        for key, name, reader, swapped_bit in (("q", c.q, at[c.matmul_qk], 1), ("k", c.k_transposed, at[c.matmul_qk], 0),
                                               ("v", c.v, at[c.matmul_pv], 1)):
            made_by = only_reader(name, reader)
            if key != "v" and made_by is not None and nodes[made_by].op_type == "Mul":
                a, b = nodes[made_by].input
                for tensor, factor in ((a, index.scalar(b)), (b, index.scalar(a))):
                    if factor is not None:
                        scale *= factor
                        drop.add(made_by)
                        name, reader = tensor, made_by
                        break
            made_by = only_reader(name, reader)
            if made_by is not None and _swapped(nodes[made_by]):
                drop.add(made_by)
                name = nodes[made_by].input[0]
                layout |= LAYOUT_BITS[key] * swapped_bit  # the transpose's input: q^T, k or v^T
            else:
                layout |= LAYOUT_BITS[key] * (1 - swapped_bit)  # as the chain has it: q, k^T, v
            ins.append(name)
        result, after = c.output, readers.get(c.output, [])
        if len(after) == 1 and _swapped(nodes[after[0]]) and c.output not in index.outputs:
            drop.add(after[0])
            result = nodes[after[0]].output[0]
            layout |= LAYOUT_BITS["out"]
        kernels[at[c.matmul_pv]] = onnx.helper.make_node(op, ins, [result], name=f"{c.matmul_pv}_kernel", domain=domain,
                                                         layout=layout, scale=scale)
    kept = [kernels.get(i, n) for i, n in enumerate(nodes) if i not in drop]
    del g.node[:]
    g.node.extend(kept)
    if not any(o.domain == domain for o in out.opset_import):
        out.opset_import.append(onnx.helper.make_opsetid(domain, 1))
    return out


def kernel_session(path: str | Path, options, *, in_graph: bool | None = None):
    """An onnxruntime session of the ONNX file ``path`` with its long attentions on the kernel, opened
    with the ``SessionOptions`` ``options`` (the module says how), or None (logged why) when there is
    nothing for the kernel to take or it cannot run here. ``in_graph``: True insists on the in-graph
    operation, False on the cut (None: the operation where it builds)."""
    from runtime.kernels import cpu_attention, ort_op

    try:
        import onnx
    except ImportError:
        log.info("onnxruntime keeps the MatMul attention: the kernel's graph rewrite needs onnx (pip install onnx)")
        return None
    proto = onnx.load(str(path))
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in proto.graph.node
           for a in n.attribute):
        return None  # If / Loop bodies may read any tensor: not cut
    proto = onnx.shape_inference.infer_shapes(proto)
    named = set()
    for i, node in enumerate(proto.graph.node):  # chains are matched by node name: every node gets its own
        if not node.name or node.name in named:
            node.name = f"{node.op_type}_{i}_unnamed"
        named.add(node.name)
    infos = {v.name: v for v in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info)}
    chains = [m for m in find_attention(proto_nodes(proto.graph), proto_ranks(proto.graph))
              if _routed(m, infos)]
    units = find_cti(proto.graph) if in_graph is not False else []
    if not chains and not units:
        return None
    if not cpu_attention.available():  # asked only now: a model without long attentions never builds it
        log.info("onnxruntime keeps the MatMul attention: %s", cpu_attention.unavailable_reason())
        return None
    if in_graph is None:
        in_graph = ort_op.available()
        if not in_graph:
            log.info("onnxruntime's kernel attentions are cut out of the graph: %s", ort_op.unavailable_reason())
    least = cpu_attention.least_keys(0 if in_graph else CUT_MIN_KEYS)
    chains = [m for m in chains if _routed(m, infos, least)]
    if not chains and not (in_graph and units):
        return None
    if in_graph:
        import onnxruntime as ort

        options.register_custom_ops_library(str(ort_op.path()))
        if units:  # each rewrite copies the model: none without a unit
            proto = with_cti_nodes(proto, units, ort_op.names()[0], ort_op.cti_name())
        graph = with_kernel_nodes(proto, chains)
        session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.chains, session.cti_units = chains, units  # as a KernelSession's
        how = f"the kernel's operation, {len(units)} CTI unit(s) as one operation each"
    else:
        session = KernelSession(proto, chains, options)
        how = "the kernel, cut out of the graph"
    # debug: the session opens like any other (a command's one-line errors stay one line)
    log.debug("onnxruntime %s: %d attention(s) over >= %d keys on %s", Path(path).name, len(chains), least, how)
    return session
