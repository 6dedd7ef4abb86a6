"""Every prompt lorebase sends, in one place. Fine-tuning and evaluation import these too, so the
model is trained on exactly what it is served with."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lorebase.citations import Citation

GAP = "\u2026"  # marks lines left out between two kept pieces of a source's evidence (generation/evidence.py)

ABSTAIN_TEXT = "The sources do not contain the answer to this question."

ANSWER_SYSTEM = (
    "You answer questions about a course and a codebase using only the numbered sources given. "
    "Answer in one to three short sentences, the answer first; do not describe the sources one by one. "
    "End every sentence with the label of the source that supports it in square brackets, like [S1]. "
    "Use the sources' own words and names. "
    f'If no source answers the question, reply exactly: "{ABSTAIN_TEXT}" Do not use outside knowledge.'
)

ANSWER_REMINDER = "Answer the question directly in one to three sentences; end each sentence with its source label, like [S1]."

SUMMARY_SYSTEM = (
    "You summarise lectures, meetings and software history. Write short bullet points, each starting "
    "with '- ', covering the main points in order. End each bullet with the reference given for the "
    "part it summarises, such as [03:15] or [S2]. Use only the text given."
)

QUESTION_WRITER_SYSTEM = (
    "You write questions that a student or developer could answer from the given passage alone. "
    "Reply with one question per line, no numbering, no answers."
)


@dataclass(frozen=True)
class Evidence:
    """A source as the model sees it: its label (S1…), where it is from, and its text."""

    citation: Citation
    text: str

    @property
    def label(self) -> str:
        return self.citation.id


def source_header(c: Citation) -> str:
    """Where a source is from, as the prompt names it: its label, without the commit for code and
    docs (every file shown is at the commit the corpus was ingested at; the API's citations keep it)."""
    if c.kind in ("code", "doc") and c.commit:
        return c.model_copy(update={"commit": None}).label
    return c.label


def format_source(ev: Evidence) -> str:
    """A source as the prompt shows it: its header, then its text, code without the indentation its
    lines share (the commit and the indentation cost prompt tokens and tell the model nothing)."""
    text = _dedented(ev.text) if ev.citation.kind == "code" else ev.text
    return f"[{ev.label}] {source_header(ev.citation)}\n{text.strip()}"


def _dedented(text: str) -> str:
    """Each run of lines between the evidence's gap marks, without the indentation its lines share."""
    runs: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip() == GAP:
            runs.append([line.strip()])
            runs.append([])
        else:
            runs[-1].append(line)
    return "\n".join(textwrap.dedent("\n".join(run)) for run in runs if run)


def answer_messages(question: str, evidence: Sequence[Evidence], history: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    """Chat messages for a grounded answer. History (earlier turns) goes between system and question."""
    sources = "\n\n".join(format_source(e) for e in evidence) or "(no sources)"
    # The reminder comes last, next to the question: small models follow what they read last.
    user = f"Sources:\n\n{sources}\n\nQuestion: {question.strip()}\n\n{ANSWER_REMINDER}"
    return [{"role": "system", "content": ANSWER_SYSTEM}, *history, {"role": "user", "content": user}]


def fit_evidence(
    question: str,
    evidence: Sequence[Evidence],
    count_tokens: Callable[[list[dict[str, str]]], int],
    budget: int,
) -> list[Evidence]:
    """Drop the lowest-ranked sources until the prompt fits the token budget (at least one is kept,
    cut to fit if it is alone and too long)."""
    kept = list(evidence)
    while len(kept) > 1 and count_tokens(answer_messages(question, kept)) > budget:
        kept.pop()
    if kept and count_tokens(answer_messages(question, kept)) > budget:
        ev = kept[0]
        text = ev.text
        while len(text) > 200 and count_tokens(answer_messages(question, [Evidence(ev.citation, text)])) > budget:
            text = text[: int(len(text) * 0.8)]
        kept = [Evidence(ev.citation, text)]
    return kept


def summary_messages(title: str, parts: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Summarise labelled parts: [(reference like "03:15" or "S2", text), ...]."""
    body = "\n\n".join(f"[{ref}] {text.strip()}" for ref, text in parts)
    user = f"Summarise: {title}\n\n{body}\n\nBullet points:"
    return [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": user}]


def merge_summaries_messages(title: str, partials: Sequence[str]) -> list[dict[str, str]]:
    """The reduce step of a map-reduce summary: merge partial bullet lists, keeping references."""
    body = "\n".join(p.strip() for p in partials)
    user = (f"Merge these partial summaries of {title} into one shorter list of bullet points, "
            f"keeping each bullet's reference in square brackets, like [03:15]:\n\n{body}\n\nBullet points:")
    return [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": user}]


def question_writer_messages(passage: str, n: int) -> list[dict[str, str]]:
    user = f"Passage:\n{passage.strip()}\n\nWrite {n} different questions answered by this passage."
    return [{"role": "system", "content": QUESTION_WRITER_SYSTEM}, {"role": "user", "content": user}]
