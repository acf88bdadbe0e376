"""``tsi-train --recipe``: a named set of option values under the ones given on the command line."""

import pytest

from tests.tsi.test_train import data, train_args  # noqa: F401  (the module's tiny dataset fixture)
from tsi import recipes
from tsi import train as tsi_train
from tsi.checkpoint import load_checkpoint
from tsi.resume import given_options


def parsed(*argv):
    argv = ["--data", "d", "--out", "o", *argv]
    args = tsi_train.build_parser().parse_args(argv)
    return args, recipes.apply(args, given_options(tsi_train.build_parser(), argv))


def test_paper_is_the_parsers_defaults():
    args, line = parsed("--arch", "tsi_r18")
    assert line is None and (args.optimizer, args.epochs, args.lr, args.input_mode) == ("sgd", 50, 0.01, "rgb")


def test_small_from_the_shipped_initialisation_trains_on_frames():
    args, line = parsed("--arch", "tsi_r18", "--recipe", "small")
    assert {k: getattr(args, k) for k in recipes.SMALL} == recipes.SMALL and args.input_mode == "rgb"
    assert line.startswith("recipe small (on frames): --epochs 20 --lr-steps 14 18 --optimizer adamw --lr 0.008")


@pytest.mark.parametrize("why", [["--init", "scratch"], ["--arch", "tsi_r50"]])
def test_small_from_scratch_trains_on_frame_differences_at_its_own_rate(why):
    args, line = parsed("--arch", "tsi_r18", "--recipe", "small", *why)
    assert (args.input_mode, args.lr, args.resize, args.base_width) == ("diff", 0.0149, "square", 32)
    assert "(from scratch, on frame differences)" in line and "--input-mode diff" in line


def test_an_option_given_keeps_its_value_and_is_named():
    args, line = parsed("--arch", "tsi_r18", "--recipe", "small", "--init", "scratch", "--lr", "0.02", "--epochs", "5")
    assert (args.lr, args.epochs, args.input_mode) == (0.02, 5, "diff")
    assert line.endswith("; given on the command line: --epochs, --lr") and "--lr 0.0149" not in line


def test_a_finetuned_run_takes_the_frames_form():
    args, _ = parsed("--arch", "tsi_r18", "--recipe", "small", "--finetune", "x.pt")
    assert (args.input_mode, args.lr) == ("rgb", 0.008)


def test_a_small_run_from_scratch_trains_and_resumes_as_itself(data, tmp_path):  # noqa: F811
    out = tmp_path / "s"
    tsi_train.run(train_args(data, out, 1, "--max-steps", "1", "--recipe", "small", "--init", "scratch"))
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["config"]["input_mode"] == "diff" and ckpt["card"]["resize"] == "square"
    assert (ckpt["args"]["optimizer"], ckpt["args"]["lr"], ckpt["args"]["recipe"]) == ("adamw", 0.0149, "small")
    # --resume alone goes on with AdamW and the recipe's rate (an AdamW run resumed without
    # --optimizer built SGD and failed on the AdamW state, KeyError 'momentum')
    tsi_train.run(train_args(data, out, 2, "--max-steps", "1", "--resume"))
    again = load_checkpoint(out / "last.pt")
    assert again["epoch"] == 1 and again["args"]["optimizer"] == "adamw" and again["args"]["lr"] == 0.0149
    with pytest.raises(tsi_train.UsageError, match=r"--recipe paper differs from the resumed run's small"):
        tsi_train.run(train_args(data, out, 3, "--max-steps", "1", "--resume", "--recipe", "paper"))


def test_the_papers_recipe_from_scratch_says_what_it_needs(data, tmp_path, caplog):  # noqa: F811
    import logging

    with caplog.at_level(logging.WARNING, logger="tsi.train"):
        tsi_train.run(train_args(data, tmp_path / "p", 1, "--max-steps", "1", "--init", "scratch"))
    assert "the paper's recipe from scratch" in caplog.text and "--recipe small" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tsi.train"):
        tsi_train.run(train_args(data, tmp_path / "s", 1, "--max-steps", "1", "--init", "scratch", "--recipe", "small"))
    assert "the paper's recipe from scratch" not in caplog.text


def test_a_bad_input_under_a_recipe_is_still_one_line(tmp_path, capfd):
    """The recipe's line is logged once the data is known good: a missing --data is the only line."""
    code = tsi_train.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--recipe", "small"])
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("tsi-train: error: dataset root does not exist"), err
