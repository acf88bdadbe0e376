"""What the suite and the studies share: the machine and its load (``machine``), timing of one
callable (``timing``), the demo model's geometry read from its card (``demo_geometry``), the scene
of the unseen-motion set (``unseen_scene``). Imports nothing else of ``benchmarks``."""
