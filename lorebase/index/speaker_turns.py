"""Who says what in a transcript chunk: its text cut into speaker turns.

A multi-speaker chunk's text is its turns, one per line, each headed "Label: " (the labels are
in the chunk's ``meta["speakers"]``); a joined window is its chunks' texts, one after another.
A line without a known label continues the turn before it.
"""

from __future__ import annotations

from collections.abc import Iterable


def turns_of(text: str, speakers: Iterable[str]) -> list[tuple[str | None, str]]:
    """(speaker or None, text) for each turn of ``text``, in order; consecutive lines of one
    speaker stay separate turns (the caller joins them if it wants)."""
    heads = sorted({f"{s}: " for s in speakers if s}, key=len, reverse=True)  # "PhD A" before "A"
    out: list[tuple[str | None, str]] = []
    current: str | None = None
    for line in text.split("\n"):
        for h in heads:
            if line.startswith(h):
                current, line = h[:-2], line[len(h):]
                break
        out.append((current, line))
    return out


def speaker_words(text: str, speakers: Iterable[str]) -> dict[str, int]:
    """Words spoken by each speaker in ``text``; the words before any label count under ""."""
    out: dict[str, int] = {}
    for who, body in turns_of(text, speakers):
        key = who or ""
        out[key] = out.get(key, 0) + len(body.split())
    return out


def named_share(counts: dict[str, int], named: Iterable[str]) -> float:
    """The share of the words counted (``speaker_words``) that the ``named`` speakers say (0 when none)."""
    total = sum(counts.values())
    return sum(counts.get(n, 0) for n in set(named)) / total if total else 0.0
