from __future__ import annotations

import pytest

from voice_agent.rag.fusion import reciprocal_rank_fusion


def test_fuses_by_the_sum_of_reciprocal_ranks_with_k_60() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]]))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["d"] == pytest.approx(1 / 62)


def test_an_item_ranked_by_both_lists_beats_one_ranked_first_by_one() -> None:
    ranked = [key for key, _ in reciprocal_rank_fusion([["a", "b"], ["c", "b"]])]
    assert ranked[0] == "b"


def test_top_cuts_the_fused_list() -> None:
    assert len(reciprocal_rank_fusion([list("abcdefg")], top=5)) == 5
