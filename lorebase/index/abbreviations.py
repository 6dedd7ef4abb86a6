"""How code abbreviates the words a question spells out: "attributes" as ``attr``, "parenthesized"
as ``Paren``, "declaration" as ``decl``, "configuration" as ``cfg``.

Stemming cannot meet these: "attribut" and ``attr`` are two tokens. A question that describes code
without naming it ("the class representing user-defined parenthesized attributes" for
``ASTParenAttribute``) then misses the names where its words are. Two sources of abbreviations:

- a fixed table of the common ones, including those that are no prefix (``msg``, ``ctx``, ``cfg``);
- the index's own names: an identifier part of four to six letters that is no English word and
  begins a longer word of the question (``paren``, ``decl``, ``meth``). A part that is an English
  word ("form" in "format") is a word of its own, not an abbreviation.

BM25 scores the abbreviations as a second query, added with a weight below one
(``index.bm25_abbreviation_weight``), so a name spelled out still counts more than its short form.
"""

from __future__ import annotations

from collections.abc import Iterable

from lorebase.index.code_tokens import stemmer_for, tokenize

ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "hexadecimal": ("hex",), "configuration": ("config", "cfg", "conf"), "parameter": ("param",),
    "argument": ("arg",), "directory": ("dir",), "authentication": ("auth",), "authorization": ("auth",),
    "repository": ("repo",), "environment": ("env",), "initialize": ("init",), "initialise": ("init",),
    "initialization": ("init",), "specification": ("spec",), "information": ("info",), "reference": ("ref",),
    "temporary": ("tmp", "temp"), "maximum": ("max",), "minimum": ("min",), "attribute": ("attr",),
    "string": ("str",), "integer": ("int",), "dictionary": ("dict",), "boolean": ("bool",),
    "function": ("func", "fn"), "variable": ("var",), "message": ("msg",), "document": ("doc",),
    "package": ("pkg",), "library": ("lib",), "executable": ("exe", "exec"), "context": ("ctx",),
    "object": ("obj",), "request": ("req",), "response": ("resp",), "database": ("db",),
    "length": ("len",), "number": ("num",), "previous": ("prev",), "index": ("idx",), "source": ("src",),
    "destination": ("dest", "dst"), "expression": ("expr",), "statement": ("stmt",),
    "descriptor": ("desc",), "utility": ("util",), "utilities": ("util",),
}


def abbreviation_table(stemmer: str | None) -> dict[str, tuple[str, ...]]:
    """ABBREVIATIONS in ``tokenize``'s form for ``stemmer``: each spelled-out word's token -> its short forms' tokens."""
    return {t: tuple(a for abbr in abbrs for a in tokenize(abbr, stemmer))
            for w, abbrs in ABBREVIATIONS.items() for t in tokenize(w, stemmer)}


MIN_MINED = 4  # letters: shorter parts ("ide", "ver") begin too many words they do not stand for
MAX_MINED = 6  # letters: a longer part is a name of its own ("dataarray", "fixturefunc"), not a short form
MIN_REST = 2  # letters the question's word has beyond the part: "param" for "paramet", not "method" for "method"


class Abbreviations:
    """The abbreviations of a question's tokens that an index's names use."""

    def __init__(self, names: Iterable[str], stemmer: str | None, dictionary: frozenset[str] = frozenset()) -> None:
        """``names``: the tokens of the index's names (its symbol vocabulary); ``dictionary``: known
        English words, which are never taken for abbreviations."""
        stem = stemmer_for(stemmer).stemWord if stemmer else (lambda w: w)
        words = set(dictionary) | {stem(w) for w in dictionary}
        self.names = frozenset(names)
        self.mined = frozenset(n for n in self.names
                               if n.isalpha() and MIN_MINED <= len(n) <= MAX_MINED and n not in words)
        self.table = abbreviation_table(stemmer)

    def expand(self, tokens: Iterable[str]) -> list[str]:
        """The abbreviations of ``tokens`` (in ``tokenize``'s form) found among the names, none of
        them a token of the query itself."""
        query = list(tokens)
        have = set(query)
        out: dict[str, None] = {}
        for t in query:
            for a in self.table.get(t, ()):
                if a in self.names:
                    out[a] = None
            if t.isalpha():
                for k in range(MIN_MINED, min(MAX_MINED, len(t) - MIN_REST) + 1):
                    if t[:k] in self.mined:
                        out[t[:k]] = None
        return [a for a in out if a not in have]
