"""The lowest layer, which every package may import: file helpers (``files``), the errors of the
export and calibration pipeline (``errors``), the video reader with the one list of video
suffixes (``video``) and the progress bar shown only on a terminal (``progress``). It imports only
the standard library, NumPy, OpenCV and (lazily, for a bar) tqdm (checked by tests/test_layers.py)."""
