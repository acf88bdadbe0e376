"""Every default is stated once: the CLIs and builders read TSIConfig's and ModelCard's fields."""

import dataclasses

import pytest

from runtime.card import ModelCard
from tsi import info, train
from tsi.config import TSIConfig, field_defaults
from tsi.model import create_model


def test_field_defaults_are_the_dataclass_defaults():
    cfg = field_defaults()
    assert cfg == {f.name: getattr(TSIConfig(), f.name) for f in dataclasses.fields(TSIConfig)}
    card = field_defaults(ModelCard)
    assert "arch" not in card and card["span_frames"] == 0 and "config" not in card  # no default / factory


def test_train_and_info_defaults_come_from_the_config():
    args = train.build_parser().parse_args(["--data", "d", "--out", "o"])
    cfg, card = TSIConfig(), field_defaults(ModelCard)
    assert (args.frames, args.input_size, args.base_width, args.sme_reduction, args.attention, args.dropout) == (
        cfg.frames, cfg.input_size, cfg.base_width, cfg.sme_reduction, cfg.attention, cfg.dropout)
    assert (args.span_frames, args.fps) == (card["span_frames"], card["fps"])
    assert info.measure.__defaults__ == (cfg.frames, cfg.input_size, cfg.num_classes)


def test_builders_default_to_the_config():
    m = create_model("tsn_r18", base_width=16)
    assert m.cfg == TSIConfig(depth=18, motion="none", temporal="none", base_width=16)


def test_train_refuses_a_span_shorter_than_the_clip(tmp_path, capsys):
    code = train.main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--frames", "8", "--span-frames", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tsi-train: error: --span-frames 4 is shorter than --frames 8") and err.count("\n") == 1
