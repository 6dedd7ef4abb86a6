"""Fusing dense and BM25 candidates: convex combination, weighted RRF, and BM25 scores for the union."""

from __future__ import annotations

import pytest

from lorebase.index.bm25 import Bm25Index
from lorebase.index.fusion import convex_fusion, reciprocal_rank_fusion
from lorebase.store import Store
from tests.index.corpus import add_source


def test_convex_fusion_min_max_normalises_each_retriever_then_weighs() -> None:
    dense = {1: 0.9, 2: 0.5, 3: 0.4}
    bm25 = {1: 0.0, 2: 10.0, 3: 9.0}
    # normalised dense 1, .2, 0; bm25 0, 1, .9 -> halves: .5, .6, .45
    got = convex_fusion([1, 2, 3], dense, bm25)
    assert [i for i, _ in got] == [2, 1, 3]
    assert [s for _, s in got] == pytest.approx([0.6, 0.5, 0.45])
    assert [i for i, _ in convex_fusion([1, 2, 3], dense, bm25, dense_weight=1.0)] == [1, 2, 3]
    assert [i for i, _ in convex_fusion([1, 2, 3], dense, bm25, dense_weight=0.0)] == [2, 3, 1]


def test_convex_fusion_gives_an_unscored_candidate_the_lowest_score_and_dedups() -> None:
    # 4 has no dense score (not embedded yet): it takes dense's floor, 0.4 -> normalised 0
    got = dict(convex_fusion([1, 2, 4, 2], {1: 0.8, 2: 0.4}, {1: 1.0, 2: 2.0, 4: 3.0}))
    assert set(got) == {1, 2, 4}
    assert got[4] == pytest.approx(0.5 * 0 + 0.5 * 1.0)
    assert got[1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)


def test_convex_fusion_without_spread_leans_on_the_other_retriever() -> None:
    # BM25 matched nothing (all 0): the dense order decides
    assert [i for i, _ in convex_fusion([5, 6, 7], {5: 0.2, 6: 0.7, 7: 0.5}, {5: 0.0, 6: 0.0, 7: 0.0})] == [6, 7, 5]
    assert convex_fusion([], {}, {}) == []
    with pytest.raises(ValueError):
        convex_fusion([1], {1: 1.0}, {1: 1.0}, dense_weight=1.5)


def test_weighted_rrf_reduces_to_classic_rrf_at_equal_weights() -> None:
    lists = [[10, 20, 30], [30, 40]]
    got = dict(reciprocal_rank_fusion(lists, k=60))
    assert got[30] == pytest.approx(1 / 63 + 1 / 61)
    assert got[10] == pytest.approx(1 / 61)
    only_dense = reciprocal_rank_fusion(lists, k=60, weights=(1.0, 0.0))
    assert [i for i, s in only_dense if s > 0] == [10, 20, 30]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion(lists, weights=(1.0,))


def test_bm25_scores_the_other_retrievers_candidates_in_the_same_pass(store: Store) -> None:
    hit = add_source(store, "doc:r:a.md", ["The proxy settings come from the environment.", "Cookies persist across requests."])
    other = add_source(store, "doc:r:b.md", ["Timeouts are in seconds.", "Proxy bypass rules for local hosts."])
    bm25 = Bm25Index(store)
    top, extra = bm25.search_scoring("proxy environment", 1, also=[hit[1], other[1], 999_999])
    assert [i for i, _ in top] == [hit[0]]
    assert extra[hit[1]] == 0.0  # no query term: BM25's true score is 0
    full = dict(bm25.search("proxy environment", 10))
    assert extra[other[1]] == pytest.approx(full[other[1]]) and extra[other[1]] > 0
    assert 999_999 not in extra  # not in the store: no score rather than a made-up one
    assert bm25.search_scoring("zzzunknownzzz", 5, also=[hit[0]]) == ([], {hit[0]: 0.0})
