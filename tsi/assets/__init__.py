"""Files shipped inside the package (package data), found from the installed package, never from
the repository root.

``DEMO_CHECKPOINT``: the demo model, a reduced-width TSI-R18 trained on the synthetic motion
benchmark (11 classes, T=8, 64²); how it was trained is in docs/training.md ("The demo model").

``MOTION_INITS``: per arch, the motion initialisation ``tsi-train --init`` starts from (the
stand-in for ImageNet weights: a model pretrained on a large synthetic motion corpus; see
docs/training.md, "The motion initialisation", and :mod:`tsi.init`).
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_CHECKPOINT = ASSETS / "demo_tsi_r18.pt"
MOTION_INITS = {arch: ASSETS / f"motion_{arch}.pt" for arch in ("tsi_r18", "tsm_r18", "tsn_r18")}
