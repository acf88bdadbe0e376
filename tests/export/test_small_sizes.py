"""Every input size the config accepts exports: at the smallest (32, 48) the last stage is 1x1 or
2x2, and a softmax over one position is folded away by the exporter, so the plugin variant's count
of saliency-attention subgraphs comes from the model at its own size (export.friendly)."""

import pytest
import torch

from export.friendly import count_sme_modules, export_friendly_model
from export.onnx_export import export_onnx
from export.stream_export import export_step_onnx
from export.variants import plugin_variant
from tests.export.helpers import LABELS, TINY
from tests.tsi.test_causal import randomize
from tsi.checkpoint import make_card, save_checkpoint
from tsi.model import create_model


@pytest.mark.parametrize("size", [32, 48])
@pytest.mark.parametrize("online", [False, True], ids=["clip", "step"])
def test_smallest_sizes_export_with_their_plugin_variant(tmp_path, size, online):
    torch.manual_seed(0)
    model = randomize(create_model("tsi_r18", causal=online, zero_init_residual=False, **dict(TINY, input_size=size)))
    ckpt = save_checkpoint(tmp_path / "m.pt", model, make_card(model.cfg, list(LABELS), span_frames=16))
    friendly, card = export_friendly_model(ckpt)
    expected = count_sme_modules(friendly)
    assert expected == (6 if size == 32 else 8)  # 32: the two SMEs of the 1x1 last stage have none
    graph = tmp_path / "m.onnx"
    if online:
        export_step_onnx(friendly, card, graph, source_sha256="0" * 64)
    else:
        export_onnx(friendly, card, graph, source_sha256="0" * 64)
    assert plugin_variant(graph, card, expected).is_file()  # raises if the count differs
