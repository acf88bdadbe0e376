"""Files shipped inside the runtime package (package data), found from the installed package, never
from the repository root or the current folder.

``DEMO_ONNX``: the demo model's standard FP32 ONNX graph (its model card in the metadata), exported
by ``export.onnx_export`` from the shipped checkpoint ``tsi/assets/demo_tsi_r18.pt``, so that a
runtime-only install (``pip install ".[runtime]"``, no torch) runs ``tsi-live`` on the demo model.
Regenerate it after changing the checkpoint or the exporter: ``python -m export.demo_asset``
(tests/export/test_demo_asset.py fails while it is stale).
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_ONNX = ASSETS / "tsi_demo.onnx"


def demo_model(local: Path) -> Path | None:
    """The demo model a run without ``--model`` uses: ``local`` (what ``tsi-build-engine`` writes in
    the current folder) when it exists, else the shipped :data:`DEMO_ONNX`; None when neither does."""
    for path in (local, DEMO_ONNX):
        if path.is_file():
            return path
    return None
