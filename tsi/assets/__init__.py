"""Files shipped inside the package (package data), found from the installed package, never from
the repository root.

``DEMO_CHECKPOINT``: the demo model, a reduced-width TSI-R18 trained on the synthetic motion
benchmark (11 classes, T=8, 64²); how it was trained is in docs/training.md ("The demo model").
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_CHECKPOINT = ASSETS / "demo_tsi_r18.pt"
