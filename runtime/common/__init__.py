"""The lowest layer, which every package may import: file helpers (``files``), the errors of the
export and calibration pipeline (``errors``) and the video reader with the one list of video
suffixes (``video``). It imports only the standard library, NumPy and OpenCV (checked by
tests/test_layers.py)."""
