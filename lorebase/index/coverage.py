"""Does the corpus mention what a question asks about?

Retrieval always returns its closest chunks, and a question about something the sources never
discuss ("How does Flask compress responses with Brotli?") still finds chunks that share most of
its words: responses, sending, the client. Scores cannot tell the two apart (the near misses score
as high as the answers: bench/calibrate_abstention.py), but the words can: a question's subject
that no chunk in the searched scope contains is a subject the sources cannot answer about.

So each word of the question that names its subject is looked up in the BM25 index within the
search's scope. Words that frame the question rather than name its subject ("architecture",
"summarise", "what did the team think") are left out, and so are compound names, whose parts are
looked up one by one. A word is mentioned when some chunk holds it (stemmed, as BM25 indexes it),
holds it as a compound without separators ("LCD" as ``L_C_D_``), holds both halves of it as
words ("setup" as "set up") in one chunk, holds it without a negating or part-of prefix
("unprocessed" as "processed", "subtree" as "tree"), or holds the abbreviation code writes for it
("hexadecimal" as ``hex``) or its other spelling ("color" as "colour"), a long name one letter
from how the transcript spells it ("Shillabeer" as "Dhillabeer"), a long word that is no English
word one letter from an English word the sources hold ("backgroud" as "background"), or holds it
joined to the question's word before or after it ("art board" as "artboard"). Each of these was a
false abstention on a real SWE-QA, QMSum or TutorialVQA question. A derived word that sums up ("prioritization",
"conceptual") is not looked up at all: questions are written in the asker's words (see
DERIVED_ENDINGS). Nor, in a long question, is a plain English word: there only names count (see
LONG_QUESTION_WORDS).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lorebase.index.abbreviations import abbreviation_table
from lorebase.index.code_tokens import STOP_WORDS, stemmer_for, tokenize

if TYPE_CHECKING:
    from lorebase.index.bm25 import Bm25Index

# Words that say what kind of answer is wanted, not what it is about: how code questions are framed
# (design, mechanism, trade-offs), how meeting questions are (who thought, said or decided what), and
# nouns naming a category whose members the sources name instead ("the recording equipment" is
# microphones and headsets in the meeting that discusses it).
FRAMING_WORDS = frozenset("""
    architecture architectural design designed redesign pattern mechanism approach strategy role purpose
    responsibility relationship interaction interplay coordination orchestration orchestrate dependency
    chain flow decouple decoupling separation separate concern layer layering abstraction implication
    rationale reason tradeoff benefit consequence impact degradation degrade bottleneck performance
    overhead efficiency scalability robustness consistency correctness safety guarantee ensure employ
    leverage utilize achieve implement implementation handle manage maintain facilitate enable reflect
    reconcile balance boundary conversion convert semantic semantics algorithm logic resolution resolve
    variation dual bidirectional unconditional unconditionally aggregate aggregation interleave ordering
    behavior behaviour affect influence determine specific particular
    summarize summarise summary discuss discussion think thought opinion view say said mention talk
    team group committee meeting member decide decision conclude conclusion agree suggest suggestion
    propose proposal recommend recommendation option alternative status progress problem issue face
    respond response idea plan pros cons doubt enough ease
    have get make use work take give need want go know like way
    high low deep large small fast slow new old early late many much several various
    do does did done can could should would may might must shall about also just only very more most such
    than too over under up down out any some each every other another all both either one thing
    often frequently usually typically generally exactly really actually currently mainly main key kind type sort
    happen occur exist difference different differ compare explain describe example detail mean meaning point
    long whole entire before after first last next during while since until
    equipment hardware software device tool feature component material resource item stuff factor aspect
    area topic element requirement measure step pipeline stage
    advantage disadvantage merit demerit solution difficulty attitude future react reaction elaborate
    explanation contribute contribution tackle consider encounter incorporate broad broader justify
    justification scenario
""".split())

# Pronouns name no subject ("what did he say about ..."), whoever they stand for.
PRONOUNS = frozenset("i me my we us our you your he him his she her hers it its they them their theirs".split())

# Prefixes that negate a word or name a part of it: the sources about "unprocessed" input or a
# "subtree" speak of processing and trees, those who "disagree" of agreeing. Only these: "re-",
# "pre-" or "in-" change what is meant.
PREFIXES = ("non", "un", "sub", "dis")

# British and American spellings of one word, either way round: a question asks about the
# "color" of a remote control whose meeting says "colour", or how to "criminalize" what a Welsh
# committee calls "criminalise".
SPELLINGS = (("our", "or"), ("or", "our"), ("ise", "ize"), ("ize", "ise"), ("isation", "ization"),
             ("ization", "isation"), ("yse", "yze"), ("yze", "yse"), ("tre", "ter"), ("ter", "tre"))

# Questions are written in the asker's words, summing up what was said or what the code does:
# "the prioritization of government matters", "the governmental issue of allocating the fund",
# "the conceptual role of the stateless session-agnostic handler". A word derived with one of
# these endings that the sources never say is how the question sums up, not a subject they
# skipped, so it does not count as unmentioned (in a compound, such a part is left out). Plain
# nouns and names ("laptop", "cinemas", "GPU", "Brotli") still count, and so do "-ing" words,
# which name an activity that would be said ("swimming lessons", "renting servers").
DERIVED_ENDINGS = tuple(sorted("""
    ization isation ation ition tion sion ment ness ity ities ance ence ical ial al ic ive ous
    izing ising ized ised ize ise ed ly ship ism ist less ful
""".split(), key=len, reverse=True))


# A name is written as its speaker or the transcriber heard it ("Shillabeer" asked about, "Dhillabeer"
# transcribed, 3 QMSum train queries): a capitalised word this long is also found one letter away.
# Shorter names would meet too many other words ("Davies" and "Davis" are two people).
NAME_MIN_LETTERS = 7
# People mistype what they ask ("backgroud", "downlload", "adjustemnts": TutorialVQA's crowd-written
# questions): a lower-case word this long that is no English word (``english_words``) is also found
# as an English word one letter away. A real word is not: "insert" is not "invert", and an
# unanswerable question's "hockey" must not meet a "jockey".
TYPO_MIN_LETTERS = 6
# A question this long describes what it asks about in many words of its own: SWE-QA's code
# questions (median 27 words) say "the tension between", "thousands of catalog files", "the greeting
# method" for code that says none of it. Among so many words, one plain English word the sources
# never use is the asker's wording, not a subject they lack: only a name is looked up there ("GPU",
# "SonarQube", "docx": capitalised, with digits, or no English word). Shorter questions, where
# every subject word counts, include every unanswerable question written for lorebase (at most 19
# words) and most QMSum queries (median 12).
LONG_QUESTION_WORDS = 20


class SubjectWords:
    """The framing words in the index's own token form, made once per stemmer."""

    def __init__(self, stemmer: str | None, dictionary: frozenset[str] = frozenset()) -> None:
        self.stemmer = stemmer
        self.dictionary = dictionary  # known English words; empty: no word is taken for a typo
        stem = stemmer_for(stemmer).stemWord if stemmer else (lambda w: w)
        self._stem = stem
        self.dictionary_stems = frozenset(stem(w) for w in dictionary)  # "thousands" and "thousand" alike
        # both forms: tokenize drops "have" as a stop word, yet stems "having" to "have"
        self.framing = frozenset({t for w in FRAMING_WORDS | PRONOUNS for t in tokenize(w, stemmer)}
                                 | {stem(w) for w in FRAMING_WORDS | PRONOUNS} | STOP_WORDS)
        self.abbreviations = abbreviation_table(stemmer)

    def variants(self, token: str, word: str) -> list[str]:
        """Other tokens that mention what ``token`` (from ``word`` of the question) names: the word
        without a negating or part-of prefix, its other spelling, and code's abbreviations of it."""
        out = list(self.abbreviations.get(token, ()))
        low = word.lower()
        for p in PREFIXES:
            rest = low[len(p):].lstrip("-")
            if low.startswith(p) and len(rest) >= 4 and rest.isalpha():
                out.extend(tokenize(rest, self.stemmer))
                break
        for a, b in SPELLINGS:
            at = low.rfind(a)
            if at >= 2 and len(low) - at <= len(a) + 3 and low.isalpha():  # in the word's ending only
                out.extend(tokenize(low[:at] + b + low[at + len(a):], self.stemmer))
        name = len(word) >= NAME_MIN_LETTERS and word[0].isupper() and word[1:].islower()
        typo = word.islower() and len(word) >= TYPO_MIN_LETTERS and bool(self.dictionary) and low not in self.dictionary
        if word.isalpha() and name:
            out.extend(t for v in _one_edit(low) for t in tokenize(v, self.stemmer))
        elif word.isalpha() and typo:
            # the corrected word must be a word too: stemmed, a non-word would meet other words' stems
            # ("refunds" -> "redunds" -> "redund", the stem of "redundant")
            out.extend(t for v in _one_edit(low) if v in self.dictionary for t in tokenize(v, self.stemmer))
        return [t for t in dict.fromkeys(out) if t != token]

    def plain(self, word: str) -> bool:
        """Is ``word`` (as the question writes it) an ordinary English word, as opposed to a name? Lower
        case, letters and hyphens only, each part an English word in some form ("high-volume",
        "thousands", "cascading", "greeting's"); "GPU", "SonarQube", "S3" and "docx" are names. False
        without a dictionary."""
        parts = re.sub(r"['’]s$", "", word).split("-")  # "the module's" is the word "module"
        return bool(self.dictionary_stems) and all(
            p.isalpha() and p.islower() and self._stem(p) in self.dictionary_stems for p in parts)

    @staticmethod
    def derived(word: str) -> bool:
        """A lower-case word with a derivational ending (see DERIVED_ENDINGS; a plural's too) on a
        stem of four letters or more: how a question sums up, as opposed to a name or a plain noun."""
        if not (word.isalpha() and word.islower()):
            return False
        forms = (word, word[:-1]) if word.endswith("s") and not word.endswith("ss") else (word,)
        return any(w.endswith(e) and len(w) - len(e) >= 4 for w in forms for e in DERIVED_ENDINGS)

    def summing_up(self, token: str, word: str) -> bool:
        """Is ``token`` (from ``word``) a derived word, or the derived part of a compound, that sums up?"""
        if "-" not in word:
            return self.derived(word)
        return any(self.derived(part) and tokenize(part, self.stemmer) == [token] for part in word.lower().split("-"))

    def of(self, question: str) -> dict[str, str]:
        """The question's subject tokens, each with the word of the question it came from."""
        out: dict[str, str] = {}
        for word in re.findall(r"[\w'’.-]+", question):
            for t in tokenize(word, self.stemmer):
                if len(t) < 2 or t in self.framing or re.search(r"[._\-]", t) or t in out:
                    continue
                out[t] = word.strip(".'’-")
        return out


def unmentioned(question: str, words: SubjectWords, bm25: Bm25Index, allowed: np.ndarray | None) -> list[str]:
    """The question's subject words that no chunk of ``allowed`` (None: all) mentions, as the
    question writes them; empty when the sources mention every one. A derived word that sums up
    (``SubjectWords.derived``) is not looked up, nor such a part of a compound, nor, in a question of
    LONG_QUESTION_WORDS words or more, a plain English word (``SubjectWords.plain``)."""
    subject = {t: w for t, w in words.of(question).items() if not words.summing_up(t, w)}
    if len(question.split()) >= LONG_QUESTION_WORDS:  # a long question's plain words are its wording
        subject = {t: w for t, w in subject.items() if not words.plain(w)}
    if not subject:
        return []
    held = bm25.holders(subject, allowed)
    missing = [t for t in subject if not held[t].size]
    if not missing:
        return []
    halves = _halves(missing)
    variants = {t: words.variants(t, subject[t]) + _joined(question, subject[t], words.stemmer) for t in missing}
    wanted = {h for pairs in halves.values() for pair in pairs for h in pair} | {v for vs in variants.values() for v in vs}
    parts = bm25.holders(wanted, allowed) if wanted else {}
    out = []
    for t in missing:
        if any(np.intersect1d(parts[a], parts[b], assume_unique=True).size for a, b in halves.get(t, ())):
            continue
        if any(parts[v].size for v in variants[t]):
            continue
        out.append(subject[t])
    return list(dict.fromkeys(out))


def _joined(question: str, word: str, stemmer: str | None) -> list[str]:
    """``word`` written together with the question's word before or after it: the one word the
    sources may use for the two ("art board" as "artboard", "photo shop" as "Photoshop")."""
    seq = re.findall(r"[A-Za-z]+", question)
    out: list[str] = []
    for i, w in enumerate(seq):
        if w.lower() != word.lower():
            continue
        for a, b in ((seq[i - 1], w) if i else ("", ""), (w, seq[i + 1]) if i + 1 < len(seq) else ("", "")):
            if a and b:
                out.extend(tokenize((a + b).lower(), stemmer))
    return out


def _one_edit(word: str) -> set[str]:
    """Every lower-case spelling one letter away: one changed, dropped, added or two swapped."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    cuts = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + c + b[1:] for a, b in cuts if b for c in letters} | {a + b[1:] for a, b in cuts if b}
            | {a + c + b for a, b in cuts for c in letters} | {a + b[1] + b[0] + b[2:] for a, b in cuts if len(b) > 1})


def _halves(tokens: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Each token of five letters or more split in two, both halves at least two letters long."""
    return {t: [(t[:i], t[i:]) for i in range(2, len(t) - 1)] for t in tokens if len(t) >= 5 and t.isalpha()}
