"""The accuracy-vs-latency suite: TSN / TSM / TSI × T × precision × backend, measured side by side
(``python -m benchmarks.suite.accuracy_latency``, console script ``tsi-bench``), and the README
section written from its JSON (``python -m benchmarks.suite.readme_section``, ``tsi-bench-readme``).
It imports ``benchmarks.common``, never a study beside it."""
