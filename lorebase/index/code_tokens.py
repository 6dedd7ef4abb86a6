"""Tokens for BM25 that work for code and prose alike.

An identifier is indexed whole and in parts: ``parseHTTPHeader`` gives ``parsehttpheader``,
``parse``, ``http``, ``header``; ``os.path.join`` gives ``os.path.join``, ``os``, ``path``, ``join``.
So a query for the exact name and a query in words both match. Stop words are dropped only
when they stand alone as prose words; inside identifiers every part counts.
"""

from __future__ import annotations

import re

# A word, possibly joined into a compound name by dots or hyphens (snake_case is inside \w).
_COMPOUND = re.compile(r"\w+(?:[.\-]\w+)*")
_SEPARATORS = re.compile(r"[._\-]+")

STOP_WORDS = frozenset(
    """a an and are as at be but by for from has have how i if in into is it its of on or so
    that the their then there these this to was were what when where which who why will with""".split()
)


def _camel_split(s: str) -> list[str]:
    """camelCase, PascalCase and acronym boundaries: ``parseHTTPHeader2`` -> parse, HTTP, Header, 2.

    By character class rather than an ASCII regex, so ``CaféBar`` splits as Café, Bar.
    """
    out: list[str] = []
    start = 0
    for i in range(1, len(s)):
        prev, c = s[i - 1], s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if (
            (prev.islower() and c.isupper())
            or (prev.isdigit() != c.isdigit())
            or (prev.isupper() and c.isupper() and nxt.islower())
        ):
            out.append(s[start:i])
            start = i
    out.append(s[start:])
    return out


def _parts(word: str) -> list[str]:
    out: list[str] = []
    for piece in _SEPARATORS.split(word):
        if piece:
            out.extend(_camel_split(piece))
    return out


def tokenize(text: str) -> list[str]:
    """Lowercased tokens of ``text``: whole identifiers and their parts, prose minus stop words."""
    tokens: list[str] = []
    for m in _COMPOUND.finditer(text):
        word = m.group(0)
        whole = word.lower()
        parts = [p.lower() for p in _parts(word)]
        if not parts:  # only separators, e.g. "__"
            continue
        if parts == [whole]:
            # A plain word: prose rules apply.
            if whole not in STOP_WORDS:
                tokens.append(whole)
            continue
        tokens.append(whole)
        tokens.extend(parts)
    return tokens
