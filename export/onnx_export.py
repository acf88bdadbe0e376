"""Export the export-friendly model to the standard ONNX graph.

Input ``clip`` (N, T, 3, S, S) float32 with T and S static (from the config/card), output ``logits``
(N, classes). N is 1 unless ``dynamic_batch``. Opset ``export.names.OPSET``, simplified with onnxsim (its own
numerical check must pass), ``onnx.checker.check_model(full_check=True)``, the model card (with
``source_sha256`` = sha256 of the checkpoint file and ``precision``) in
``metadata_props["tsi.model_card"]``, written atomically.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

from runtime.common.errors import OnnxModelError
from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.common.files import atomic_write_bytes
from runtime.step_graph import LOGITS_OUTPUT
from export.names import OPSET

log = logging.getLogger(__name__)

INPUT_NAME = "clip"
OUTPUT_NAME = LOGITS_OUTPUT  # the clip graph's output has the step graph's name


@contextlib.contextmanager
def torchscript_export():
    """The context of every ``torch.onnx.export(..., dynamo=False)`` call here: no gradients, and the
    exporter's expected warnings caught for that call only. torch 2.13 marks the TorchScript
    exporter deprecated; the dynamo exporter needs onnxscript, which this project does not install.
    The tracer warns where Python reads a shape (input checks, 1/sqrt(d)): T, S and d are static by
    design (from the config), so baking them into the graph is intended. Exported graphs are checked
    afterwards (checker, onnxsim, parity tests)."""
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*TorchScript.*", category=FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def export_onnx(model, card: ModelCard, out_path: str | os.PathLike, *, source_sha256: str,
                dynamic_batch: bool = False, batch: int = 1, opset: int = OPSET,
                simplify: bool = True) -> Path:
    """Export ``model`` (export-friendly, eval) to ``out_path``; returns the path.

    ``card`` is written into the metadata with ``source_sha256`` and ``precision="fp32"``.
    """
    import onnx
    import torch

    if opset < OPSET:
        raise ValueError(f"opset must be >= {OPSET} (got {opset})")
    if model.training:
        raise ValueError("export needs a model in eval mode")
    t, s = card.frames, card.input_size
    if model.cfg.frames != t or model.cfg.input_size != s:
        raise ValueError(f"card (T={t}, S={s}) does not match the model "
                         f"(T={model.cfg.frames}, S={model.cfg.input_size})")
    dummy = torch.randn(batch, t, 3, s, s)
    dynamic_axes = {INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}} if dynamic_batch else None
    buf = io.BytesIO()
    with torchscript_export():
        torch.onnx.export(model, (dummy,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True,
                          dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = simplify_onnx(proto)
    proto.producer_name = "tsi-edge"
    proto.doc_string = f"{card.arch} T={t} S={s}: input {INPUT_NAME} (N,T,3,S,S) float32 -> {OUTPUT_NAME}"
    set_card(proto, card.replace(source_sha256=source_sha256, precision="fp32"))
    return save_onnx(proto, out_path)


def simplify_onnx(proto):
    """onnxsim with its own check (random inputs, simplified vs original in onnxruntime)."""
    import onnxsim

    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise OnnxModelError("onnxsim could not validate the simplified model against the original")
    return simplified


def set_card(proto, card: ModelCard) -> None:
    """Put ``card`` (JSON) in ``metadata_props[tsi.model_card]``, replacing any previous one."""
    props = [p for p in proto.metadata_props if p.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, card.to_json()


def get_card(proto, source: str = "ONNX model") -> ModelCard:
    for p in proto.metadata_props:
        if p.key == ONNX_METADATA_KEY:
            try:
                return ModelCard.from_json(p.value, f"{source} ({ONNX_METADATA_KEY})")
            except CardError as e:
                raise OnnxModelError(str(e)) from None
    raise OnnxModelError(f"{source}: no model card (metadata_props[{ONNX_METADATA_KEY!r}]); "
                         "export it with export.onnx_export")


def save_onnx(proto, out_path: str | os.PathLike, *, check: bool = True) -> Path:
    """``onnx.checker.check_model`` (full type/shape check unless the graph has custom-domain nodes,
    e.g. the plugin variant, which the checker cannot type) then an atomic write."""
    import onnx

    if check:
        custom = any(n.domain not in ("", "ai.onnx") for n in proto.graph.node)
        try:
            onnx.checker.check_model(proto, full_check=not custom)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            raise OnnxModelError(f"{out_path}: the ONNX graph fails onnx.checker: {e}") from None
    return atomic_write_bytes(Path(out_path), proto.SerializeToString())


def load_onnx(path: str | os.PathLike, *, check: bool = True, custom_domains: tuple[str, ...] = ()):
    """Load and (unless ``check=False``) check an ONNX file; a missing, corrupt or invalid file
    raises :class:`OnnxModelError` naming it. Graphs with custom-domain nodes (the plugin variant)
    are checked without the full type/shape check, which cannot know the custom op."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as e:
        raise OnnxModelError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    if check:
        if len(proto.graph.node) == 0 or not proto.graph.input or not proto.graph.output:
            raise OnnxModelError(f"{path}: not a usable ONNX model (empty graph)")
        has_custom = any(n.domain in custom_domains for n in proto.graph.node) if custom_domains else False
        try:
            onnx.checker.check_model(proto, full_check=not has_custom)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            raise OnnxModelError(f"{path}: invalid ONNX model: {e}") from None
    return proto


def read_card_from_onnx(path: str | os.PathLike) -> ModelCard:
    """The model card stored in an ONNX file's metadata (raises OnnxModelError if absent/invalid)."""
    return get_card(load_onnx(path, check=False), str(path))
