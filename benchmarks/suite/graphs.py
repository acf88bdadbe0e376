"""The ONNX graphs of one model: FP32 (dynamic batch), FP16, INT8 Q/DQ and the onnxruntime
MultiHeadAttention variant, built with the project's own export and calibration steps
(``export.friendly``, ``export.onnx_export``, ``export.variants``,
``export.ort_attention``). A graph that cannot be built is recorded with the error as its reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from benchmarks.suite.models import ModelSpec, checkpoint_for

log = logging.getLogger(__name__)


def build_graphs(spec: ModelSpec, workdir: Path, *, precisions: list[str], calib_clips: np.ndarray | None,
                 calib_method: str, mha: bool, parity_clips: np.ndarray) -> dict:
    """``{"fp32": path, "fp16": path | reason, "int8": path | reason, "fp32-mha": path | reason,
    "mha_parity": str}``; paths exist, reasons are strings."""
    from export.friendly import export_friendly_model
    from export.names import precision_graph
    from export.onnx_export import export_onnx
    from export.variants import fp16_graph, load_graph, write_graph
    from runtime.common.files import file_sha256

    stem = spec.key.replace("/", "_")
    ckpt = checkpoint_for(spec, workdir)
    model, card = export_friendly_model(ckpt)
    out: dict = {}
    fp32 = export_onnx(model, card, workdir / f"{stem}.onnx", source_sha256=file_sha256(ckpt), dynamic_batch=True)
    out["fp32"] = fp32
    if "fp16" in precisions:
        try:
            out["fp16"] = write_graph(fp16_graph(load_graph(fp32)), workdir / precision_graph(stem, "fp16"),
                                      card.replace(precision="fp16", source_sha256=file_sha256(ckpt)))
        except Exception as e:  # noqa: BLE001 - recorded as the row's reason
            out["fp16"] = f"FP16 graph failed: {type(e).__name__}: {e}"
    if "int8" in precisions:
        if calib_clips is None:
            out["int8"] = "no calibration videos (pass --calib)"
        else:
            out["int8"] = _int8(fp32, card, calib_clips, calib_method, workdir / precision_graph(stem, "int8"))
    if mha:
        out["fp32-mha"], out["mha_parity"] = _mha(fp32, workdir / f"{stem}.mha.onnx", parity_clips)
    return out


def _int8(fp32: Path, card, clips: np.ndarray, method: str, path: Path):
    from export.variants import int8_qdq_graph, write_graph

    try:  # as export.pipeline: the attention stays in float
        return write_graph(int8_qdq_graph(fp32, clips, method), path, card.replace(precision="int8"))
    except Exception as e:  # noqa: BLE001
        return f"INT8 Q/DQ graph failed: {type(e).__name__}: {e}"


def _mha(fp32: Path, path: Path, clips: np.ndarray):
    import onnx

    from export.onnx_export import save_onnx
    from export.ort_attention import check_ort_attention_parity, make_ort_attention_graph

    try:
        variant, _ = make_ort_attention_graph(onnx.load(str(fp32)))
        saved = save_onnx(variant, path)
        agreement = check_ort_attention_parity(fp32, saved, clips)
        return saved, str(agreement)
    except Exception as e:  # noqa: BLE001
        return f"MultiHeadAttention variant failed: {type(e).__name__}: {e}", None
