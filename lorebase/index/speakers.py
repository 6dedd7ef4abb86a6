"""Which of a transcript's speakers a question names.

Meeting questions often ask what one person said ("What did Kirsty Williams say about ...",
"What did C think about ...", "What did the Professor think ..."); the answer lies in that
person's turns. A speaker label is named by:

- the whole label ("Kirsty Williams AM", "PhD A", "Project Manager"), spaces optional
  ("JustinTrudeau");
- the label without honorifics before or after the name ("Kirsty Williams" for "Kirsty Williams
  AM", "Chrystia Freeland" for "Hon. Chrystia Freeland"), when no other speaker has that name;
- the letter of an ICSI-style label ("C" for "Professor C"): a capital standing alone, never the
  question's first word (there "A" is the article) and never "I";
- one word of a label ("Professor", "Bergeron", "Paul-Hus") that exactly one speaker's label
  has, never the question's first word.

Case: each word's first letter must be written as in the label ("the Marketing team's view" names
Marketing, "the marketing budget" does not; "the bill" never names Mr. Bill Blair), except role
words of letter labels ("the professor"), and except when the question has no capital at all
(typed in lower case): then case is ignored, and letters are not matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Titles around a name, compared without case and without their dots.
_BEFORE = frozenset({"hon", "right", "rt", "the", "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "madam", "mister"})
_AFTER = frozenset({"am", "ms", "mp", "msp", "mla", "mpp", "mna", "mha", "mep", "td", "qc", "kc", "jr", "sr"})
_COMMON = frozenset({"and", "for", "the", "speaker"})  # never a name on its own (the whole label still is)
_LETTER_LABEL = re.compile(r"^(.+?)\s+([A-Z])$")
_WORD = re.compile(r"[^\s,;:()\"]+")
_EDGE = r"(?<![\w\-])"
_END = r"(?![\w\-])"


def _words(label: str) -> list[str]:
    """The label's words without surrounding dots or quotes ("Hon." -> "Hon")."""
    return [w.strip(".'’") for w in _WORD.findall(label) if w.strip(".'’")]


def _bare(words: list[str]) -> list[str]:
    """The words without the titles before and after the name (all of them if nothing else is left)."""
    lo, hi = 0, len(words)
    while lo < hi - 1 and words[lo].lower() in _BEFORE:
        lo += 1
    while hi > lo + 1 and words[hi - 1].lower() in _AFTER:
        hi -= 1
    return words[lo:hi]


def _word_pattern(word: str, cased: bool) -> str:
    """``word`` with its first letter's case kept (when ``cased``) and the rest of it in any case."""
    head, tail = re.escape(word[0]), re.escape(word[1:])
    if not cased or not word[0].isalpha():
        return f"(?i:{head}{tail})"
    return f"{head}(?i:{tail})" if tail else head


def _phrase(words: list[str], cased: bool) -> re.Pattern[str]:
    """The words in order as whole words, separated by spaces, dots or nothing ("Justin Trudeau",
    "JustinTrudeau", "Hon. Chrystia")."""
    body = r"[\s.]*".join(_word_pattern(w, cased) for w in words)
    return re.compile(_EDGE + body + _END)


def _first_word_end(question: str) -> int:
    m = re.search(r"\w[\w\-']*", question)
    return m.end() if m else 0


def _found(pattern: re.Pattern[str], question: str, skip_first: bool, first_end: int) -> bool:
    return any(not (skip_first and m.start() < first_end) for m in pattern.finditer(question))


def named_speakers(question: str, speakers: Iterable[str]) -> set[str]:
    """The labels among ``speakers`` (a transcript's speaker labels, as written) that ``question`` names."""
    labels = list(dict.fromkeys(s for s in speakers if s and s.strip()))
    if not labels or not question.strip():
        return set()
    cased = any(c.isupper() for c in question)
    first_end = _first_word_end(question)
    named: set[str] = set()

    words = {lab: _words(lab) for lab in labels}
    bare = {lab: _bare(ws) for lab, ws in words.items()}
    letter_of = {lab: m.group(2) for lab in labels if (m := _LETTER_LABEL.match(lab.strip()))}

    # The whole label, and the bare name where no other speaker shares it.
    bare_count: dict[str, int] = {}
    for lab in labels:
        key = " ".join(bare[lab]).lower()
        bare_count[key] = bare_count.get(key, 0) + 1
    for lab in labels:
        if words[lab] and _found(_phrase(words[lab], cased), question, False, first_end):
            named.add(lab)
            continue
        b = bare[lab]
        if b and b != words[lab] and bare_count[" ".join(b).lower()] == 1 and len(" ".join(b)) >= 3:
            if _found(_phrase(b, cased), question, len(b) == 1, first_end):
                named.add(lab)

    # The letter of a letter label ("C" for "Professor C"), matched with its case.
    if cased:
        letter_count: dict[str, int] = {}
        for letter in letter_of.values():
            letter_count[letter] = letter_count.get(letter, 0) + 1
        for lab, letter in letter_of.items():
            if letter == "I" or letter_count[letter] > 1:
                continue
            # Not inside an abbreviation ("U.S.") and not the first word.
            pat = re.compile(_EDGE + r"(?<!\.)" + letter + r"(?![\w\-]|\.\w)")
            if _found(pat, question, True, first_end):
                named.add(lab)

    # One word of one speaker's label: a role ("Professor") or part of a name ("Bergeron").
    owners: dict[str, set[str]] = {}
    role_words: set[str] = set()
    for lab in labels:
        parts = bare[lab]
        if lab in letter_of:
            parts = _words(_role(lab))
            role_words.update(p.lower() for p in parts)
        for p in parts:
            if len(p) >= 3 and p.lower() not in _COMMON and p.lower() not in _BEFORE:
                owners.setdefault(p.lower(), set()).add(lab)
    for lab in labels:
        if lab in named:
            continue
        parts = _words(_role(lab)) if lab in letter_of else bare[lab]
        for p in parts:
            key = p.lower()
            if owners.get(key) != {lab}:
                continue
            pat = _phrase([p], cased and key not in role_words)
            if _found(pat, question, True, first_end):
                named.add(lab)
                break
    return named


def _role(label: str) -> str:
    """The role part of a letter label ("Professor" of "Professor C"); the label itself otherwise."""
    m = _LETTER_LABEL.match(label.strip())
    return m.group(1) if m else label
