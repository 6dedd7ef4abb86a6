"""The text each retriever indexes for a chunk: the source title, then the chunk itself.

Both retrievers see the same text so their candidates are comparable; the title (a path, an
issue title, a lecture name) carries words that the chunk body often lacks.
"""

from __future__ import annotations


def indexed_text(title: str | None, text: str) -> str:
    return f"{title}\n{text}" if title else text
