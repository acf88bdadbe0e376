"""The demo model's ONNX graph shipped with the runtime package (``runtime/assets/tsi_demo.onnx``):
the standard FP32 graph ``tsi-build-engine`` exports from the shipped demo checkpoint (same
exporter, same card with the checkpoint's sha256 in the metadata, checked against PyTorch), so a
runtime-only install runs ``tsi-live`` without torch.

    python -m export.demo_asset            # regenerate it (after changing the checkpoint or the exporter)
    python -m export.demo_asset --check    # exit 1 when the shipped graph is stale

tests/export/test_demo_asset.py checks the shipped graph against the checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

from runtime.assets import DEMO_ONNX
from runtime.card import ModelCard
from runtime.common.files import file_sha256

log = logging.getLogger("export.demo_asset")

CHECK_CLIPS = 2


def demo_clips(card: ModelCard, n: int = CHECK_CLIPS) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *card.input_shape)).astype(np.float32)


def export_demo_onnx(out: str | os.PathLike = DEMO_ONNX, checkpoint: str | os.PathLike | None = None) -> Path:
    """Export the demo checkpoint (default: the shipped one) to ``out`` as ``tsi-build-engine`` exports
    its standard graph, and check it against PyTorch (``export.parity``, FP32 tolerance)."""
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from export.parity import check_fp32_parity
    from tsi.assets import DEMO_CHECKPOINT
    from tsi.checkpoint import load_model

    checkpoint = Path(checkpoint or DEMO_CHECKPOINT)
    sha = file_sha256(checkpoint)
    model, card = export_friendly_model(checkpoint)
    path = export_onnx(model, card, out, source_sha256=sha)
    reference, _ = load_model(checkpoint)  # as trained: its own attention, BN unfolded
    check_fp32_parity(path, reference, demo_clips(card))
    return path


def stale_reason(onnx_path: str | os.PathLike = DEMO_ONNX, checkpoint: str | os.PathLike | None = None,
                 *, tol: float | None = None) -> str | None:
    """Why the shipped graph is not what the exporter makes from the checkpoint (None: it is): missing,
    a card that is not the checkpoint's (sha256, or any other field), or logits that differ from
    PyTorch's beyond the FP32 tolerance."""
    from export.onnx_export import read_card_from_onnx
    from export.parity import FP32_REL_TOL, compare_logits, run_onnx, torch_logits
    from tsi.assets import DEMO_CHECKPOINT
    from tsi.checkpoint import load_model

    onnx_path, checkpoint = Path(onnx_path), Path(checkpoint or DEMO_CHECKPOINT)
    if not onnx_path.is_file():
        return f"{onnx_path} does not exist"
    card = read_card_from_onnx(onnx_path)
    reference, ckpt_card = load_model(checkpoint)
    expected = ckpt_card.replace(source_sha256=file_sha256(checkpoint), precision="fp32")
    if card != expected:
        diff = sorted(k for k, v in expected.to_dict().items() if card.to_dict().get(k) != v)
        return f"{onnx_path}: its card differs from the checkpoint's in {', '.join(diff)}"
    clips = demo_clips(card)
    agreement = compare_logits(torch_logits(reference, clips), run_onnx(onnx_path, clips))
    if agreement.rel > (FP32_REL_TOL if tol is None else tol) or agreement.top1 < 1.0:
        return f"{onnx_path}: its logits differ from the checkpoint's ({agreement})"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.demo_asset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only check the shipped graph (exit 1 when stale)")
    p.add_argument("--out", type=Path, default=DEMO_ONNX, help=f"where to write it (default {DEMO_ONNX})")
    args = p.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.check:
        reason = stale_reason(args.out)
        if reason:
            print(f"stale: {reason}; regenerate it with python -m export.demo_asset", file=sys.stderr)
            return 1
        log.info("%s is the export of the shipped demo checkpoint", args.out)
        return 0
    path = export_demo_onnx(args.out)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
