"""--partial-bn (tsi.partial_bn): a training run changes the first BatchNorm layer's statistics and
affine parameters and no other BatchNorm layer's, while every other weight trains; without it every
layer changes."""

import pytest
import torch
from torch import nn

from tsi import partial_bn
from tsi import train as tsi_train
from tsi.checkpoint import load_checkpoint, make_card, save_checkpoint
from tsi.cli import UsageError
from tsi.model import create_model
from tests.tsi.test_train import data, train_args  # noqa: F401 - the module's dataset fixture


def _norm_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_freeze_norms_keeps_the_first_norm_trainable_and_runs_the_rest_in_eval():
    model = create_model("tsi_r18", frames=4, num_classes=3, input_size=32, base_width=8, sme_reduction=2)
    frozen = partial_bn.freeze_norms(model)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert frozen == norms[1:] and len(frozen) > 10  # the SME/CTI branches' norms too
    assert norms[0].weight.requires_grad and not any(m.weight.requires_grad for m in frozen)
    model.train()
    model(torch.zeros(1, 4, 3, 32, 32))  # the frozen layers switch to eval as they run
    assert norms[0].training and not any(m.training for m in frozen)


def _changed(before: dict, after: dict, prefix: str) -> set[str]:
    return {k.rsplit(".", 1)[1] for k in before if k.startswith(prefix + ".") and
            before[k].is_floating_point() and not before[k].equal(after[k])}


def test_a_partial_bn_run_changes_only_the_first_norm(data, tmp_path):  # noqa: F811
    # the start: a model with BatchNorm statistics and affine parameters of its own, as a
    # pretrained one has (not the fresh ones and zeros a frozen layer would keep by accident)
    start_model = create_model("tsi_r18", frames=4, num_classes=11, input_size=32, base_width=8,
                               sme_reduction=2, zero_init_residual=False)
    for m in start_model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            for t in (m.weight, m.bias, m.running_mean, m.running_var):
                t.data.uniform_(0.5, 1.5)
    start_path = tmp_path / "start.pt"
    save_checkpoint(start_path, start_model, make_card(start_model.cfg, [f"c{i}" for i in range(11)]))
    start = start_model.state_dict()
    runs = {}
    for name, extra in (("partial", ["--partial-bn"]), ("full", [])):
        tsi_train.run(train_args(data, tmp_path / name, 1, "--finetune", str(start_path), "--max-steps", "2",
                                 "--optimizer", "adamw", *extra))
        runs[name] = load_checkpoint(tmp_path / name / "last.pt")["model"]
    names = _norm_names(start_model)
    for name in ("partial", "full"):
        first = _changed(start, runs[name], names[0])
        assert {"weight", "bias", "running_mean", "running_var"} <= first, (name, first)
    assert all(not _changed(start, runs["partial"], n) for n in names[1:])
    assert all({"running_mean", "weight"} <= _changed(start, runs["full"], n) for n in names[1:])
    convs = [k for k, v in start.items() if v.dim() == 4]
    assert len(convs) > 10 and all(not start[k].equal(runs["partial"][k]) for k in convs)  # the rest trains


def test_a_run_from_scratch_refuses_partial_bn(data, tmp_path):  # noqa: F811
    with pytest.raises(UsageError, match=r"--partial-bn .* starts from scratch \(--init scratch\): give --init motion"):
        tsi_train.run(train_args(data, tmp_path / "s", 1, "--init", "scratch", "--partial-bn"))
    assert not (tmp_path / "s" / "last.pt").exists()
