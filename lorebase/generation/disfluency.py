"""Spoken sentences as a reader wants to see them quoted: without "uh" and "um", stutters and
tokenised contractions ("it 's", "do n't").

Meeting transcripts are verbatim ("I mean i i e The um I think it 's true"). The model copies what
it is shown, and an extractive answer quotes it, so the evidence a transcript gives is cleaned
before either sees it: fewer prompt tokens, answers a person can read, and nothing of substance
lost. The citation still points at the exact times of the original words.
"""

from __future__ import annotations

import re

# Hesitation sounds only: "you know" or "I mean" can carry meaning, and an upper-case "ER" is a word.
_FILLER = re.compile(r"(?<![\w'-])(?:[Uu]h+|[Uu]m+|[Uu]hm+|[Ee]r|[Ee]rm+|[Hh]mm+|[Mm]m+(?:-hmm)?|[Ee]h)(?![\w'-])[,.]?")
_REPEAT = re.compile(r"\b(\w+)(?:\s+\1\b)+", re.IGNORECASE)
# A cut-off start ("th that", "s so") right before the word it began; real short words stay.
_FRAGMENT = re.compile(r"(?<![\w'])([a-z]{1,3})\s+(?=\1[a-z])")
_SHORT_WORDS = frozenset("a i an as at be by do go he if in is it me my no of on or so to up us we an and are but can "
                         "did for had has her him his how its not now one our out she the too two was who why yes you".split())
_CONTRACTION = re.compile(r"(?<=\w) (?='(?:s|re|ve|ll|d|m)\b|n't\b)", re.IGNORECASE)


def clean_speech(text: str) -> str:
    """``text`` without hesitation sounds, repeated words and false starts; "" when nothing else was said."""
    out = _CONTRACTION.sub("", text)
    out = _FILLER.sub(" ", out)
    out = _REPEAT.sub(r"\1", out)
    out = _FRAGMENT.sub(lambda m: m.group(0) if m.group(1).lower() in _SHORT_WORDS else "", out)
    out = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(out.split()))
    out = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", out)  # "so, , then" after a filler left
    out = out.lstrip(",;: ")
    return out[:1].upper() + out[1:] if out and out[0].islower() and text[:1].isupper() else out


_SPEAKER_LABEL = re.compile(r"^([A-Z][\w .'-]{0,40}:\s+)")


def clean_transcript(text: str) -> str:
    """A transcript passage line by line ("Speaker: words"), each cleaned; lines that only hesitate go."""
    lines = []
    for line in text.split("\n"):
        m = _SPEAKER_LABEL.match(line)
        label, body = (m.group(1), line[m.end():]) if m else ("", line)
        said = clean_speech(body)
        if re.search(r"\w", said):
            lines.append(label + said)
    return "\n".join(lines)
