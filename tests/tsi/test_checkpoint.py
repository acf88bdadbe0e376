import pytest
import torch

from runtime.card import ModelCard
from tsi.checkpoint import CheckpointError, load_model, make_card, save_checkpoint
from tsi.model import create_model


@pytest.fixture
def model_and_card():
    torch.manual_seed(0)
    model = create_model("tsi_r18", frames=4, num_classes=3, input_size=64, base_width=16,
                         sme_reduction=4).eval()
    return model, make_card(model.cfg, ["a", "b", "c"], span_frames=16)


def test_round_trip(tmp_path, model_and_card):
    model, card = model_and_card
    path = save_checkpoint(tmp_path / "m.pt", model, card, epoch=3)
    loaded, card2 = load_model(path)
    assert card2 == card and card2.arch == "tsi_r18" and card2.frame_step == 4
    x = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # overrides that keep the weights' shapes are allowed
    exp, _ = load_model(path, attention="matmul")
    assert exp.cfg.attention == "matmul"
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_errors_name_the_problem(tmp_path, model_and_card):
    model, card = model_and_card
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_model(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a TSI checkpoint"):
        load_model(foreign)
    # a card whose T does not match the config
    path = save_checkpoint(tmp_path / "m.pt", model, card)
    ckpt = torch.load(path, weights_only=True)
    ckpt["card"]["frames"] = 8
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="card T=8 but model T=4"):
        load_model(tmp_path / "mismatch.pt")
    # weights of another architecture
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["base_width"] = 32
    ckpt["card"]["config"]["base_width"] = 32
    torch.save(ckpt, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_model(tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="card T=6 but model T=4"):
        save_checkpoint(tmp_path / "x.pt", model, ModelCard.from_dict({**card.to_dict(), "frames": 6}))


class _Code:
    """Pickled by reference to a function: the safe loader must refuse to run it."""

    def __reduce__(self):
        import os
        return (os.getpid, ())


@pytest.mark.parametrize("case, message", [
    ("empty", "empty file, not a checkpoint"),
    ("text", "not a PyTorch checkpoint (not the zip archive torch.save writes)"),
    ("truncated", "truncated or corrupt checkpoint (its zip archive is incomplete)"),
    ("code", "holds an object the safe loader refuses to run (posix.getpid)"),
])
def test_unreadable_checkpoints_say_what_the_file_is_in_one_line(tmp_path, model_and_card, case, message):
    """One line each, never PyTorch's advice to retry with weights_only=False, no colour codes."""
    model, card = model_and_card
    path = tmp_path / f"{case}.pt"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("not a checkpoint\n")
    elif case == "truncated":
        good = save_checkpoint(tmp_path / "good.pt", model, card)
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        torch.save({"format": "tsi-checkpoint", "x": _Code()}, path)
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    text = str(e.value)
    assert message in text and "\n" not in text and "weights_only" not in text and "\x1b" not in text


def test_an_oversized_config_is_refused_before_the_model_is_built(tmp_path, model_and_card):
    model, card = model_and_card
    path = save_checkpoint(tmp_path / "m.pt", model, card)
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["base_width"] = 65536
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"base_width must be 1 to 256 \(got 65536\)"):
        load_model(path)
