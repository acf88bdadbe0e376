"""A random-weight causal model at the demo geometry and its online step graphs, for the online
throughput studies: cost does not depend on the weights, so no trained causal model is needed
(none is shipped: ``tsi/assets`` holds clip models)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common.demo_geometry import demo_card, demo_config

__all__ = ["random_causal_model", "export_step_graphs"]


def random_causal_model(seed: int = 0):
    """(a causal TSI of the demo model's architecture, width, input, T and classes with seeded
    random weights, BatchNorm folded and attention as MatMul as the export wants; its card)."""
    import torch

    from export.friendly import fold_batchnorms
    from tsi.checkpoint import make_card
    from tsi.model import create_model

    card, cfg = demo_card(), demo_config()
    torch.manual_seed(seed)
    model = create_model(card.arch, causal=True, frames=card.frames, num_classes=card.num_classes,
                         input_size=card.input_size, base_width=cfg.base_width, attention="matmul").eval()
    fold_batchnorms(model)
    return model, make_card(model.cfg, list(card.labels), span_frames=card.span_frames)


def export_step_graphs(folder: Path, seed: int = 0) -> dict[str, Path]:
    """``{"batched": the step graph with a dynamic batch (--dynamic-batch), "per_stream": the
    same model's batch-1 graph}`` written into ``folder``."""
    from export import names
    from export.stream_export import export_step_onnx

    model, card = random_causal_model(seed)
    out = {}
    for kind in ("batched", "per_stream"):
        path = folder / names.standard_graph(names.online_stem(f"random_causal_{kind}"))
        out[kind] = export_step_onnx(model, card, path, source_sha256=f"random weights, seed {seed}",
                                     dynamic_batch=kind == "batched")
    return out
