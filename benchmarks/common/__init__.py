"""What the suite and the studies share: the machine and its load (``machine``), timing of one
callable (``timing``), the demo model's geometry read from its card (``demo_geometry``), the scenes
of the unseen-motion set (``unseen_scene``, ``unseen_scene_b``; their videos' formats: ``tsi.data.generated``),
the CPU backends' profiles (``cpu_profile``), the R50 models (``r50``), labelled centre clips of a folder
(``val_clips``). Imports nothing else of ``benchmarks``."""
