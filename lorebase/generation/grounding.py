"""Checks an answer against its sources: citations must name real sources, and what each sentence
says must be found in the text it cites. Cheap and lexical on purpose: it runs on every answer.

A small model often forgets to cite or cites the wrong label; an uncited sentence that one source
clearly supports gets that source's label, and a sentence that no source supports fails the check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence

CITATION = re.compile(r"\[(S\d+)\]")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[S\d+\])+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(`\"'])|\n+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?")
_ABSTAIN_HINTS = (
    "do not contain the answer", "does not contain the answer", "not in the sources", "no information",
    "cannot find", "could not find", "not mentioned", "don't know", "do not know",
)
STOP_WORDS = frozenset(
    "a an the and or but if then so of to in on at by for with from as is are was were be been being it its "
    "this that these those there here which who whom what when where why how do does did has have had can "
    "could should would will shall may might must not no yes you your we our they their he she his her i me my "
    "also just only very more most such than too into about over under up down out s t".split()
)


def content_words(text: str) -> list[str]:
    words = []
    for w in _WORD.findall(CITATION.sub(" ", text)):
        w = w.lower()
        if w in STOP_WORDS or len(w) < 2 and not w.isdigit():
            continue
        words.append(_stem(w))
    return words


def _stem(w: str) -> str:
    # Enough folding for "returns"/"returned"/"returning" to meet "return"; not a linguistic stemmer.
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def is_abstention(answer: str) -> bool:
    low = answer.lower()
    return ABSTAIN_TEXT.lower() in low or any(h in low for h in _ABSTAIN_HINTS)


def support(claim: str, source_text: str) -> float:
    """Share of the claim's content words found in the source (1.0 = all of them)."""
    words = content_words(claim)
    if not words:
        return 1.0
    have = set(content_words(source_text))
    return sum(w in have for w in words) / len(words)


@dataclass
class SentenceCheck:
    text: str
    labels: list[str]
    score: float
    added: bool = False  # the label was attached by the check, not written by the model


@dataclass
class Grounding:
    supported: bool
    abstained: bool
    answer: str  # the answer with invalid citations removed and missing ones added
    cited: list[str]
    invalid: list[str]
    score: float
    reason: str
    sentences: list[SentenceCheck] = field(default_factory=list)


def check(answer: str, evidence: Sequence[Evidence], threshold: float = 0.6) -> Grounding:
    """Decide whether `answer` is supported by the sources it cites (or could cite)."""
    texts = {e.label: e.text for e in evidence}
    invalid = sorted({lbl for lbl in CITATION.findall(answer) if lbl not in texts}, key=_label_order)
    if is_abstention(answer):
        return Grounding(False, True, answer.strip(), [], invalid, 0.0, "the model found no answer in the sources")
    checks: list[SentenceCheck] = []
    for sent in split_sentences(answer):
        # "… fusion. [S2] Instead …": citations written after a full stop belong to the sentence before.
        lead = _LEADING_CITATIONS.match(sent)
        if lead and checks:
            prev = checks[-1]
            _attach(prev, CITATION.findall(lead.group(0)), texts)
            sent = sent[lead.end():]
        labels = [lbl for lbl in dict.fromkeys(CITATION.findall(sent)) if lbl in texts]
        bare = CITATION.sub("", sent).strip()
        if not content_words(bare):  # a heading, a bullet marker, a lone citation
            if labels and checks:
                _attach(checks[-1], labels, texts)
            continue
        if labels:
            score = support(bare, " ".join(texts[lbl] for lbl in labels))
            checks.append(SentenceCheck(bare, labels, score))
            continue
        best = max(texts, key=lambda lbl: support(bare, texts[lbl]), default=None)
        score = support(bare, texts[best]) if best else 0.0
        checks.append(SentenceCheck(bare, [best] if best and score >= threshold else [], score, added=True))
    if not checks:
        return Grounding(False, False, _repair(answer, [], invalid), [], invalid, 0.0, "the answer is empty")
    weights = [len(content_words(c.text)) for c in checks]
    overall = sum(c.score * w for c, w in zip(checks, weights, strict=True)) / max(1, sum(weights))
    unsupported = [c for c in checks if c.score < threshold]
    cited = list(dict.fromkeys(lbl for c in checks for lbl in c.labels))
    rebuilt = _repair(answer, checks, invalid)
    if not cited:
        return Grounding(False, False, rebuilt, [], invalid, overall, "no sentence is supported by any source", checks)
    if unsupported and sum(len(content_words(c.text)) for c in unsupported) > 0.34 * sum(weights):
        return Grounding(False, False, rebuilt, cited, invalid, overall,
                         f"{len(unsupported)} of {len(checks)} sentences are not supported by the cited sources", checks)
    return Grounding(True, False, rebuilt, cited, invalid, overall, "supported", checks)


def _attach(prev: SentenceCheck, labels: Sequence[str], texts: dict[str, str]) -> None:
    """The model cited these for `prev`: they are its labels now (not ones the check guessed)."""
    written = [lbl for lbl in labels if lbl in texts]
    if not written:
        return
    if prev.added:
        prev.labels, prev.added = [], False
    prev.labels.extend(lbl for lbl in written if lbl not in prev.labels)
    prev.score = support(prev.text, " ".join(texts[lbl] for lbl in prev.labels))


def _repair(answer: str, checks: Sequence[SentenceCheck], invalid: Sequence[str]) -> str:
    """The answer as written, less citations of sources that do not exist, plus the labels the check
    attached to uncited sentences."""
    out = answer
    for lbl in invalid:
        out = out.replace(f"[{lbl}]", "")
    for c in checks:
        if c.added and c.labels:
            i = out.find(c.text)
            if i >= 0:
                end = i + len(c.text)
                out = out[:end] + "".join(f" [{lbl}]" for lbl in c.labels) + out[end:]
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", out)).strip()


def _label_order(label: str) -> int:
    return int(label[1:]) if label[1:].isdigit() else 0
