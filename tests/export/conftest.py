import pytest

from tests.export.helpers import make_checkpoint, structured_clips


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt, tmp_path_factory):
    """(static-batch ONNX path, export-friendly model, card) of the tiny checkpoint."""
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from runtime.common.files import file_sha256

    model, card = export_friendly_model(tiny_ckpt)
    path = export_onnx(model, card, tmp_path_factory.mktemp("onnx") / "tiny.onnx",
                       source_sha256=file_sha256(tiny_ckpt))
    return path, model, card


@pytest.fixture(scope="session")
def clips():
    """8 random clips (N, T, 3, S, S) of the tiny model's geometry, with colour offsets and coarse
    patterns so that the tiny model's top-1 varies between them."""
    return structured_clips(8, seed=1).numpy()
