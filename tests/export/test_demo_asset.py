"""The demo graph the runtime package ships (runtime/assets/tsi_demo.onnx) is what the exporter makes
from the shipped checkpoint: its card is the checkpoint's (sha256 included) and its logits are
PyTorch's to the FP32 tolerance; the export is deterministic, so a fresh one is byte-identical.
When this fails, regenerate it: ``python -m export.demo_asset``."""

from __future__ import annotations

import pytest

from export.demo_asset import export_demo_onnx, main, stale_reason
from export.onnx_export import read_card_from_onnx
from runtime.assets import DEMO_ONNX
from runtime.common.files import file_sha256
from tsi.assets import DEMO_CHECKPOINT

REGENERATE = "stale: regenerate it with python -m export.demo_asset"


def test_shipped_demo_onnx_is_the_export_of_the_shipped_checkpoint():
    assert read_card_from_onnx(DEMO_ONNX).source_sha256 == file_sha256(DEMO_CHECKPOINT), REGENERATE
    assert stale_reason() is None, REGENERATE
    assert main(["--check"]) == 0


def test_the_check_sees_a_stale_graph(tmp_path):
    """A graph of another checkpoint (here: the card's sha256 rewritten) or a missing one is stale."""
    import onnx

    from export.onnx_export import get_card, save_onnx, set_card

    proto = onnx.load(str(DEMO_ONNX))
    set_card(proto, get_card(proto).replace(source_sha256="0" * 64))
    stale = save_onnx(proto, tmp_path / "stale.onnx")
    assert "source_sha256" in stale_reason(stale)
    assert "does not exist" in stale_reason(tmp_path / "none.onnx")
    assert main(["--check", "--out", str(stale)]) == 1


@pytest.mark.slow
def test_a_fresh_export_is_byte_identical(tmp_path):
    """Slow only in that it exports (~10 s); a torch / onnx / onnxsim upgrade may change the bytes
    without changing the logits (then regenerate)."""
    fresh = export_demo_onnx(tmp_path / "tsi_demo.onnx")
    assert fresh.read_bytes() == DEMO_ONNX.read_bytes(), REGENERATE
