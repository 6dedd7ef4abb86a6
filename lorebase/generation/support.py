"""Does a source say what a sentence claims? A second pass after the lexical word-share check.

Word share alone passes "X does not retry" against "X retries", a swapped name whose other words
match, and a changed number. So the sentence is aligned with the evidence sentence(s) it overlaps
most, and three rules run on that alignment:

- polarity: a negation on one side only ("not", "never", "no longer", "n't", ...), or a word swapped
  for its opposite ("enabled"/"disabled", "before"/"after", ...);
- numbers: every number in the claim appears in the evidence;
- names: every distinctive token of the claim (identifiers, dotted or snake_case names, CamelCase,
  capitalised words inside the sentence, quoted strings) appears in the aligned evidence.

Measured on a labelled set of real sentences and perturbed copies (bench/bench_support_check.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lorebase.generation.grounding import CITATION, STOP_WORDS, content_words, split_sentences, support

_NEGATIONS = frozenset(
    "not no never none nothing nobody neither nor cannot without fails unable unless instead".split()
)
_OPPOSITES = {
    "enabled": "disabled", "enable": "disable", "true": "false", "before": "after", "always": "never",
    "increase": "decrease", "increases": "decreases", "more": "less", "higher": "lower", "first": "last",
    "add": "remove", "adds": "removes", "added": "removed", "allow": "deny", "allows": "denies",
    "accept": "reject", "accepts": "rejects", "sync": "async", "synchronous": "asynchronous",
    "start": "end", "starts": "ends", "open": "close", "opens": "closes", "include": "exclude",
    "includes": "excludes", "required": "optional", "inside": "outside", "agree": "disagree",
    "agreed": "disagreed", "like": "dislike", "liked": "disliked", "cheaper": "expensive", "yes": "no",
    "success": "failure", "valid": "invalid", "supported": "unsupported", "possible": "impossible",
}
_OPPOSITE = {**_OPPOSITES, **{v: k for k, v in _OPPOSITES.items()}}
_CODE_LINE = re.compile(r"[(){}\[\]=;]|^\s*(?:def|class|return|import|from|if|for|while)\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_']*")
_DISTINCT = re.compile(
    r"`([^`]+)`"                                  # `code`
    r"|\"([^\"]{2,40})\""                         # "quoted"
    r"|\b([A-Za-z_][A-Za-z0-9]*(?:[._][A-Za-z0-9_]+)+)"  # dotted.name or snake_case
    r"|\b([a-z]+[A-Z][A-Za-z0-9]*|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*)"  # camelCase, CamelCase
)


@dataclass(frozen=True)
class ClaimCheck:
    supported: bool
    score: float  # lexical word share against all the evidence
    reason: str  # "supported", or what failed


def check_claim(claim: str, evidence: str, threshold: float = 0.6, code: bool = False) -> ClaimCheck:
    """Is `claim` (one sentence, citations allowed) supported by `evidence`?

    `code`: the evidence is source code, whose lines are not sentences: a name the claim uses need
    only be somewhere in it, and polarity is compared only with a line that reads as prose."""
    bare = CITATION.sub("", claim).strip()
    score = support(bare, evidence)
    if score < threshold:
        return ClaimCheck(False, score, f"only {score:.0%} of its words are in the source")
    if squash(bare.rstrip(".!?")) in squash(evidence):
        return ClaimCheck(True, score, "quoted from the source")
    best, aligned = _aligned(bare, evidence)
    all_low, claim_low = evidence.lower(), bare.lower()
    for name in _distinct(bare):
        n = name.lower()
        if n not in all_low:
            return ClaimCheck(False, score, f"'{name}' is not in the source")
        if n not in best.lower() and not code:
            # Named elsewhere in the source, but the sentence that says this names something else.
            rivals = [d for d in _distinct(best) if d.lower() not in claim_low]
            if rivals:
                return ClaimCheck(False, score, f"'{name}' where the source says '{rivals[0]}'")
    nums = set(_numbers(evidence))
    missing_num = [n for n in _numbers(bare) if n not in nums]
    if missing_num:
        return ClaimCheck(False, score, f"the number {missing_num[0]} is not in the source")
    low_claim, low_best, low_aligned = _lower_words(bare), _lower_words(best), _lower_words(aligned)
    swapped = [w for w in low_claim if w in _OPPOSITE and _OPPOSITE[w] in low_aligned and w not in low_aligned]
    if swapped:
        return ClaimCheck(False, score, f"'{swapped[0]}' where the source says '{_OPPOSITE[swapped[0]]}'")
    # Polarity against the one sentence that says this, so a negation in a neighbour does not count.
    if (not code or not _CODE_LINE.search(best)) and _negated(low_claim) != _negated(low_best):
        return ClaimCheck(False, score, "negation differs from the source")
    return ClaimCheck(True, score, "supported")


def _aligned(claim: str, evidence: str) -> tuple[str, str]:
    """The evidence sentence that overlaps the claim most, and the best two together (which covers
    a claim that merges two source sentences)."""
    sents = [s for line in evidence.split("\n") for s in split_sentences(line)] or [evidence]
    words = set(content_words(claim))
    # Most shared words first; among equals the shorter sentence, which says less besides.
    ranked = sorted(sents, key=lambda s: (-len(words & set(content_words(s))), len(s)))
    return ranked[0], " ".join(ranked[:2])


def squash(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _lower_words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(text)]


def _negated(words: Sequence[str]) -> bool:
    """Odd number of negations: "not never" cancels; "n't" counts."""
    n = sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))
    n += sum(1 for a, b in zip(words, words[1:], strict=False) if a == "no" and b == "longer")
    return n % 2 == 1


def _numbers(text: str) -> list[str]:
    return [m.group(0).replace(",", "") for m in _NUMBER.finditer(CITATION.sub(" ", text))]


def _distinct(text: str) -> list[str]:
    out: list[str] = []
    for m in _DISTINCT.finditer(text):
        token = next(g for g in m.groups() if g)
        out.append(token.strip())
    # Capitalised words inside a sentence (names: Flask, Jinja, Tuesday), not the sentence's first word.
    for sent in split_sentences(text):
        words = sent.split()
        for w in words[1:]:
            w = w.strip(".,;:!?()[]\"'")
            if (len(w) > 1 and w[0].isupper() and not w.isupper() and w.lower() not in _NEGATIONS
                    and w.lower() not in STOP_WORDS and "'" not in w and not CITATION.fullmatch(f"[{w}]")):
                out.append(w)
    return list(dict.fromkeys(out))
