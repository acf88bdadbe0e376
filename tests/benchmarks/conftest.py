from tests.export.conftest import clips, tiny_ckpt, tiny_onnx  # noqa: F401  (shared session fixtures)
