"""Property-based fuzz of the model-card and TSIConfig parsers (hypothesis): any input either loads
or raises the parser's one error type (CardError; ValueError for the config), within a time bound
(hypothesis' per-example deadline) and a memory bound (tracemalloc's peak per example)."""

from __future__ import annotations

import json
import math
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.card import MAX_FRAMES, MAX_INPUT_SIZE, CardError, ModelCard
from tsi.config import MAX_ATTENTION_BYTES, TSIConfig

FUZZ = settings(max_examples=150, deadline=250, suppress_health_check=[HealthCheck.too_slow])
PEAK_BYTES = 32 << 20  # what one parse may allocate, at most

json_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)

VALID = ModelCard(arch="tsi_r18", labels=("a", "b"), frames=8, input_size=64, resize_short=73,
                  span_frames=32).to_dict()


def _bounded(fn, *args):
    tracemalloc.start()
    try:
        return fn(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK_BYTES, f"{peak} bytes allocated parsing {args!r:.200}"


def _load_card(data):
    try:
        card = _bounded(ModelCard.from_json, json.dumps(data))
    except CardError as e:
        assert str(e) and "\n" not in str(e)
        return None
    assert 2 <= card.frames <= MAX_FRAMES and 16 <= card.input_size <= MAX_INPUT_SIZE
    assert all(math.isfinite(v) for v in (*card.mean, *card.std, card.fps))
    return card


@FUZZ
@given(json_values)
def test_any_json_is_a_card_or_a_card_error(data):
    _load_card(data)


@FUZZ
@given(st.sampled_from(sorted(VALID)), json_values)
def test_a_valid_card_with_one_field_changed_loads_or_is_refused(field, value):
    _load_card({**VALID, field: value})


numbers = st.integers(-10**9, 10**9) | st.floats(allow_nan=True, allow_infinity=True)


@FUZZ
@given(st.sampled_from(["frames", "input_size", "resize_short", "span_frames", "fps"]), numbers)
def test_any_number_in_a_numeric_field(field, value):
    _load_card({**VALID, field: value})


@FUZZ
@given(st.sampled_from(["mean", "std"]), st.lists(numbers, min_size=3, max_size=3))
def test_any_numbers_as_mean_and_std(field, value):
    _load_card({**VALID, field: value})


@FUZZ
@given(st.integers(1, 300_000))
def test_deep_nesting_is_refused_not_a_recursion_error(depth):
    with pytest.raises(CardError):
        _bounded(ModelCard.from_json, "[" * depth + "]" * depth)


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_or_bytes(text):
    with pytest.raises(CardError):
        _bounded(ModelCard.from_json, text)


CONFIG = TSIConfig(depth=18, frames=8, num_classes=11, input_size=64, base_width=32, sme_reduction=8).to_dict()


@FUZZ
@given(st.sampled_from(sorted(CONFIG)), json_values)
def test_a_config_with_one_field_changed_loads_or_raises_value_error(field, value):
    try:
        cfg = _bounded(TSIConfig.from_dict, {**CONFIG, field: value})
    except ValueError as e:
        assert str(e).startswith(("invalid TSIConfig", "unknown TSIConfig", "a TSIConfig"))
        return
    assert cfg.attention_bytes <= MAX_ATTENTION_BYTES and cfg.base_width <= 256


@FUZZ
@given(json_values)
def test_any_json_as_a_config(data):
    try:
        _bounded(TSIConfig.from_dict, data)
    except ValueError:
        pass


def test_the_fuzz_reaches_both_outcomes():
    """The properties above cannot pass by refusing everything: a valid card and config load, and
    the bounds named in issue 19 are refused."""
    assert _load_card(VALID) is not None
    for field, value in [("frames", 8.5), ("input_size", 10**7), ("resize_short", 12000), ("labels", "abc"),
                         ("mean", [float("nan"), 0, 0]), ("std", [1, float("inf"), 1]), ("span_frames", 10**6), ("fps", float("inf")),
                         ("fps", float("nan")), ("fps", 0), ("frames", True), ("config", {"a": {"b": {"c": 1}}})]:
        assert _load_card({**VALID, field: value}) is None, field
    with pytest.raises(ValueError, match="base_width"):
        TSIConfig.from_dict({**CONFIG, "base_width": 65536})
