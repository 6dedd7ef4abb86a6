"""Tokens for BM25 that work for code and prose alike.

An identifier is indexed whole and in parts: ``parseHTTPHeader`` gives ``parsehttpheader``,
``parse``, ``http``, ``header``; ``os.path.join`` gives ``os.path.join``, ``os``, ``path``, ``join``.
So a query for the exact name and a query in words both match. Stop words are dropped only
when they stand alone as prose words; inside identifiers every part counts.

With a stemmer (Snowball, via PyStemmer) prose words and identifier parts are stemmed, so
"proxies" meets ``get_proxy`` and "discussed" meets "discussion"; a whole compound identifier
joined by dots, hyphens or underscores is kept as written, so an exact name still matches only
itself; one joined only by letter case (``BigQuery``) is stemmed whole, as the plain word
"bigquery" is.
"""

from __future__ import annotations

import re
import threading
from typing import Any

# Languages named with marks that the word pattern below would drop: "C++" would be the letter "c",
# the C domain's word, where the code and paths say ``cpp``; "C#" and "F#" likewise.
_MARKED_NAMES = re.compile(r"(?<![\w+#])([CcFf])(\+\+|#)(?![A-Za-z_+#])")
_MARKED_AS = {"++": "pp", "#": "sharp"}

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


_LOCAL = threading.local()  # PyStemmer's stemmers are not thread-safe: one per thread and language


def stemmer_for(language: str) -> Any:
    """The Snowball stemmer for ``language`` (english, german, ...); ValueError if it has none."""
    cache: dict[str, Any] = _LOCAL.__dict__.setdefault("stemmers", {})
    stemmer = cache.get(language)
    if stemmer is None:
        import Stemmer

        try:
            stemmer = Stemmer.Stemmer(language)
        except KeyError:
            raise ValueError(f"no Snowball stemmer for {language!r}; languages: {', '.join(Stemmer.algorithms())}") from None
        cache[language] = stemmer
    return stemmer


def tokenize(text: str, stemmer: str | None = None) -> list[str]:
    """Lowercased tokens of ``text``: whole identifiers and their parts, prose minus stop words;
    with ``stemmer`` (a Snowball language) prose words and identifier parts stemmed."""
    tokens: list[str] = []
    stem_at: list[int] = []  # positions of tokens to stem (all but whole compound names)
    if "+" in text or "#" in text:
        text = _MARKED_NAMES.sub(lambda m: m.group(1) + _MARKED_AS[m.group(2)], text)
    for m in _COMPOUND.finditer(text):
        word = m.group(0)
        whole = word.lower()
        parts = [p.lower() for p in _parts(word)]
        if not parts:  # only separators, e.g. "__"
            continue
        if parts == [whole]:
            # A plain word: prose rules apply.
            if whole not in STOP_WORDS:
                stem_at.append(len(tokens))
                tokens.append(whole)
            continue
        if not _SEPARATORS.search(word):
            # Only letter case joins it (BigQuery): people also write it as one plain word
            # ("bigquery"), which is stemmed, so the whole is stemmed the same way to meet it.
            stem_at.append(len(tokens))
        tokens.append(whole)
        stem_at.extend(range(len(tokens), len(tokens) + len(parts)))
        tokens.extend(parts)
    if stemmer and stem_at:
        stemmed = stemmer_for(stemmer).stemWords([tokens[i] for i in stem_at])
        for i, t in zip(stem_at, stemmed, strict=True):
            tokens[i] = t
    return tokens
