"""The evidence-line vector cache: the same rows as embedding directly, only unseen texts embedded, the oldest
dropped first, and one embedder's vectors never served for another's."""

from __future__ import annotations

import numpy as np

from lorebase.generation.vector_cache import VectorCache


class Counting:
    def __init__(self, scale: float = 1.0) -> None:
        self.calls: list[list[str]] = []
        self.scale = scale

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t) * self.scale, sum(map(ord, t)) % 97] for t in texts], dtype=np.float32)


def test_rows_match_the_embedder_and_only_new_texts_are_embedded() -> None:
    cache, emb = VectorCache(10), Counting()
    first = cache.embed("m", ["a", "bb", "a"], emb)
    np.testing.assert_array_equal(first, emb(["a", "bb", "a"]))
    emb.calls.clear()
    second = cache.embed("m", ["bb", "ccc", "a"], emb)
    np.testing.assert_array_equal(second, Counting()(["bb", "ccc", "a"]))
    assert emb.calls == [["ccc"]], "only the text not seen before reaches the model"
    assert (cache.hits, cache.misses) == (2, 3)


def test_the_least_recently_used_text_goes_first_and_models_do_not_share_vectors() -> None:
    cache, emb = VectorCache(2), Counting()
    cache.embed("m", ["a", "b"], emb)
    cache.embed("m", ["a"], emb)  # "a" used again: "b" is now the oldest
    cache.embed("m", ["c"], emb)
    assert len(cache) == 2
    emb.calls.clear()
    cache.embed("m", ["a", "b"], emb)
    assert emb.calls == [["b"]]
    tuned = Counting(scale=10.0)
    out = cache.embed("tuned", ["a"], tuned)
    assert tuned.calls == [["a"]] and out[0, 0] == 10.0


def test_size_zero_embeds_every_time() -> None:
    cache, emb = VectorCache(0), Counting()
    cache.embed("m", ["a"], emb)
    cache.embed("m", ["a"], emb)
    assert emb.calls == [["a"], ["a"]] and len(cache) == 0 and cache.misses == 2
