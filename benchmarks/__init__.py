"""Benchmarks. ``suite/``: the accuracy-vs-latency suite (``tsi-bench``, ``tsi-bench-readme``);
the modules beside it: one study each, a CLI each (``python -m benchmarks.<study>``); ``common/``:
what both use (the machine and its load, timing, the demo model's geometry). Results: ``results/``."""
