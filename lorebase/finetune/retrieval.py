"""Retrieval as the fine-tuning code uses it: the serving search, as a plain function."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorebase.finetune.abstention import Retrieve

if TYPE_CHECKING:
    from lorebase.index.search import Hit, SearchService


def retriever(search: SearchService) -> Retrieve:
    """``retrieve(question, k)``: the hybrid search the answer service uses (k capped at its limit)."""
    from lorebase.index.search import MAX_K

    def retrieve(question: str, k: int) -> list[Hit]:
        return search.retrieve(question, min(max(k, 1), MAX_K))

    return retrieve
