"""A question's words as code abbreviates them: the table, the names mined from the index, and BM25
scoring them as a weighted second query on a real store."""

from __future__ import annotations

import pytest

from lorebase.index.abbreviations import Abbreviations
from lorebase.index.bm25 import Bm25Index
from lorebase.index.code_tokens import tokenize
from lorebase.store import Store
from tests.index.corpus import add_source


def expand(question: str, names: list[str], dictionary: frozenset[str] = frozenset()) -> list[str]:
    words = Abbreviations([t for n in names for t in tokenize(n, "english")], "english", dictionary)
    return words.expand(tokenize(question, "english"))


def test_a_word_meets_the_short_form_the_names_use_and_nothing_the_names_lack() -> None:
    names = ["ASTParenAttr", "parse_decl", "cfg", "format_form"]
    got = expand("the parenthesized attributes of a declaration and its configuration", names)
    # mined from the names ("paren", "decl") and from the table ("attribute" as attr, "configuration" as cfg)
    assert sorted(got) == ["attr", "cfg", "decl", "paren"]
    # the table's other forms of "configuration" (config, conf) are not among the names, so not asked for
    assert expand("the configuration", ["config_file"]) == ["config"]
    # "form" begins "format", but an English word is a word of its own, not an abbreviation
    assert expand("how is the output formatted", names, frozenset({"form"})) == []
    # a short form the question writes itself is not asked for again
    assert expand("the paren of the parenthesized attr", names) == []
    # a word that is the name itself leaves nothing to abbreviate ("param" is no prefix of a longer word here)
    assert expand("the param", ["param"]) == []


def test_mined_parts_are_four_to_six_letters_and_leave_two_of_the_word() -> None:
    # "ver" is too short to stand for "version"; "dataarray" too long to be a short form
    assert expand("the version of each dataarrays", ["ver", "dataarray"]) == []
    # "meth" (4 letters) for "method" (6) leaves two: taken; "metho" would leave one: not
    assert expand("which method", ["meth", "metho"]) == ["meth"]


def code(store: Store) -> tuple[list[int], list[int], list[int]]:
    paren = add_source(store, "code:o/r:domains/c.py", [{
        "text": "class ASTParenAttr(ASTAttribute):\n    def __init__(self, id, arg): ...",
        "meta": {"symbol": "ASTParenAttr", "symbol_kind": "class", "signature": "class ASTParenAttr(ASTAttribute):"}}],
        kind="code", repo="o/r", path="domains/c.py")
    other = add_source(store, "code:o/r:domains/lists.py", [{
        "text": "class ASTAttributeList:\n    def describe(self, signode): ...",
        "meta": {"symbol": "ASTAttributeList", "symbol_kind": "class", "signature": "class ASTAttributeList:"}}],
        kind="code", repo="o/r", path="domains/lists.py")
    talk = add_source(store, "transcript:m/1", [{"text": "We said paren attr is odd.", "start_time": 0.0, "end_time": 30.0}],
                      kind="transcript", lecture="m/1", title="m1")
    return paren, other, talk


def test_bm25_counts_the_abbreviations_with_their_weight_in_code_only(store: Store) -> None:
    paren, other, talk = code(store)
    question = "Which class represents parenthesized attributes?"
    every = paren + other + talk
    off, on = Bm25Index(store, "english"), Bm25Index(store, "english", abbreviation_weight=0.5)
    # without the abbreviations both classes share "attribut"; with them "paren" and "attr" lift ASTParenAttr
    for index in (off, on):
        index.refresh()
    sym_off, sym_on = off.symbol_scores(question, every), on.symbol_scores(question, every)
    assert sym_on[paren[0]] > sym_off[paren[0]] and sym_on[other[0]] == pytest.approx(sym_off[other[0]])
    assert sym_on[paren[0]] > sym_on[other[0]]
    files_off, files_on = off.file_scores(question, every)[0], on.file_scores(question, every)[0]
    assert files_on[paren[0]] > files_off[paren[0]]
    hits_off, _ = off.search_scoring(question, 10)
    hits_on, also = on.search_scoring(question, 10, also=talk)
    assert [i for i, _ in hits_on][0] == paren[0]
    assert dict(hits_on)[paren[0]] > dict(hits_off)[paren[0]]
    # the transcript says "paren attr" but is no code: its score does not move (0: no question word in it)
    assert also[talk[0]] == 0.0 and talk[0] not in dict(hits_on)
    # the same question off: no abbreviation asked for; on: the names' short forms of its words
    assert off._expanded(tokenize(question, "english")) == []
    assert sorted(on._expanded(tokenize(question, "english"))) == ["attr", "paren"]
