"""The demo checkpoint exported with a dynamic batch axis: the graph the throughput studies
(multistream, Triton serving) serve several streams with."""

from __future__ import annotations

from pathlib import Path


def demo_dynamic_onnx(out: Path) -> Path:
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from runtime.common.files import file_sha256
    from tsi.assets import DEMO_CHECKPOINT

    model, card = export_friendly_model(DEMO_CHECKPOINT)
    return export_onnx(model, card, out, source_sha256=file_sha256(DEMO_CHECKPOINT), dynamic_batch=True)
