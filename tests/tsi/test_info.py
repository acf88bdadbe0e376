"""MACs against the paper's Tables 1-2 (224², one view), counted by torch's FLOP counter."""

import pytest

from tsi.info import measure


@pytest.fixture(scope="module")
def costs():
    return {(n, t): measure(n, t) for n, t in [("tsn_r50", 8), ("tsi_r50", 8), ("tsi_r50", 16)]}


def test_tsn_r50_matches_paper(costs):
    c = costs["tsn_r50", 8]
    assert abs(c.gmacs_conv_fc - 33) <= 0.7
    assert c.gmacs_attention == 0


@pytest.mark.parametrize("frames,paper", [(8, 34), (16, 68)])
def test_tsi_r50_paper_figure_lies_between_the_two_counts(costs, frames, paper):
    c = costs["tsi_r50", frames]
    tsn_per_frame = costs["tsn_r50", 8].gmacs_conv_fc / 8
    assert c.gmacs_conv_fc <= paper <= c.gmacs_total
    # SME and CTI add little in conv/linear: within 1.5% of TSN's
    assert c.gmacs_conv_fc / (tsn_per_frame * frames) - 1 < 0.015
    # the attention matmuls: about 2 G at T=8, 4 G at T=16
    assert abs(c.gmacs_attention - 2 * frames / 8) < 0.3 * frames / 8
