"""Cutting a timed transcript into chunks that end where a thought ends.

A chunk grows segment by segment and closes at the first sentence end (or change of speaker)
once it spans at least ``min_s`` seconds; it never spans more than ``max_s``. Segments are first
cut at their inner sentence ends (times shared out by characters), so a caption cue that holds
the end of one sentence and the start of the next can close a chunk in the right place. When no
sentence end falls inside the window the chunk closes at the last segment boundary past the
minimum, and failing that at a word boundary with interpolated times.

Times are handled in integer milliseconds so that adjacent chunks share exact boundaries.

``joined_windows`` adds the second (and further) scale: windows that join 2..N consecutive
chunks, indexed beside them. Answers in meetings and lectures often run over several minutes;
a joined window holds the whole passage, while a short chunk still wins a question whose answer
is one remark. The search drops a window that overlaps a better-ranked one, so a passage comes
back once, at the scale that matched it best, with its exact start and end.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lorebase.ingest.records import ChunkDraft
from lorebase.ingest.transcripts.segments import Segment


@dataclass(frozen=True)
class _Piece:
    start: int  # milliseconds
    end: int
    text: str
    speaker: str | None
    sentence_end: bool


# A run of terminal punctuation, optionally followed by closing quotes or brackets, then a space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
_ABBREVIATIONS = {"e.g.", "i.e.", "dr.", "mr.", "mrs.", "ms.", "prof.", "vs.", "cf.", "fig.", "no.", "approx.", "st.", "al."}


_WORD_WINDOW = 16  # longer than any abbreviation: a longer word's tail can never match one


def _is_abbreviation(text: str, end: int) -> bool:
    # Only the characters just before `end`: splitting all of text[:end] at every sentence end made
    # long transcripts quadratic.
    words = text[max(0, end - _WORD_WINDOW):end].split()
    word = words[-1].lower() if words else ""
    return word in _ABBREVIATIONS or bool(re.fullmatch(r"[a-z]\.", word))  # initials: "J."


def ends_sentence(text: str) -> bool:
    text = text.rstrip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return bool(ends) and ends[-1] == len(text) and not _is_abbreviation(text, len(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of one segment's text; the last may be unfinished (it continues in the next cue)."""
    parts: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if _is_abbreviation(text, m.end()):
            continue
        part = text[start:m.end()].strip()
        if part:
            parts.append(part)
        start = m.end()
    rest = text[start:].strip()
    if rest:
        parts.append(rest)
    return parts


# A piece longer than this (a paragraph with no sentence end) is cut at word boundaries first, so
# that cutting it to chunk size never copies its whole remainder again and again.
MAX_PIECE_CHARS = 4096


def _pieces(segments: Sequence[Segment]) -> list[_Piece]:
    out: list[_Piece] = []
    for seg in segments:
        start, end = round(seg.start * 1000), round(seg.end * 1000)
        parts = split_sentences(seg.text)
        total = sum(len(p) for p in parts)
        t, acc = start, 0
        for i, part in enumerate(parts):
            acc += len(part)
            last = i == len(parts) - 1
            p_end = end if last else start + (end - start) * acc // total
            piece = _Piece(t, p_end, part, seg.speaker, sentence_end=not last or ends_sentence(part))
            out.extend(_bounded(piece) if len(part) > MAX_PIECE_CHARS else [piece])
            t = p_end
    return out


def _bounded(piece: _Piece) -> list[_Piece]:
    """A long piece as consecutive pieces of at most about MAX_PIECE_CHARS, cut after a word, times
    shared out by characters; only the last keeps the piece's sentence end."""
    text, span, total = piece.text, piece.end - piece.start, len(piece.text)
    out: list[_Piece] = []
    lo, t = 0, piece.start
    while total - lo > MAX_PIECE_CHARS:
        cut = text.rfind(" ", lo + 1, lo + MAX_PIECE_CHARS)
        if cut <= lo:  # one word longer than the bound: cut after it
            cut = text.find(" ", lo + MAX_PIECE_CHARS)
            if cut < 0:
                break
        t_cut = piece.start + span * cut // total
        out.append(_Piece(t, t_cut, text[lo:cut], piece.speaker, sentence_end=False))
        lo, t = cut + 1, t_cut
    out.append(_Piece(t, piece.end, text[lo:], piece.speaker, piece.sentence_end))
    return out


def _split_at_words(piece: _Piece, limit: int) -> tuple[_Piece | None, _Piece]:
    """Cut a piece after as many words as end by ``limit`` (ms). (None, piece) if not even one does.
    A word ending at character ``off`` ends at ``start + span * off // total``: the last space at or
    before the largest such ``off`` that still ends by ``limit`` is the cut."""
    text, span, total = piece.text, piece.end - piece.start, len(piece.text)
    room = limit - piece.start
    if room < 0:
        return None, piece
    # span * off // total <= room  <=>  off < (room + 1) * total / span
    max_off = total if span <= 0 else -(-(room + 1) * total // span) - 1
    pos = text.rfind(" ", 0, min(max_off, total) + 1)
    if pos <= 0:
        return None, piece
    cut = piece.start + span * pos // total
    head = _Piece(piece.start, cut, text[:pos], piece.speaker, sentence_end=False)
    tail = replace(piece, start=cut, text=text[pos + 1:])
    return head, tail


def chunk_segments(
    segments: Sequence[Segment], *, min_s: float, max_s: float, label_speakers: bool | None = None
) -> list[ChunkDraft]:
    """Group segments into chunks of ``min_s``..``max_s`` seconds (the last may be shorter).

    ``label_speakers`` prefixes each turn with its speaker's name; by default it is on when the
    transcript names more than one speaker."""
    if max_s < min_s:
        raise ValueError("max_s must be at least min_s")
    lo, hi = round(min_s * 1000), round(max_s * 1000)
    if label_speakers is None:
        label_speakers = len({s.speaker for s in segments if s.speaker}) > 1

    queue = deque(_pieces(segments))
    chunks: list[list[_Piece]] = []
    cur: list[_Piece] = []

    def close() -> None:
        nonlocal cur
        if cur:
            chunks.append(cur)
            cur = []

    while queue:
        p = queue[0]
        t0 = cur[0].start if cur else p.start
        if p.end - t0 > hi:  # p does not fit in this chunk
            if cur and cur[-1].end - t0 >= lo:
                close()  # no sentence end since the minimum: close at the segment boundary
                continue
            head, tail = _split_at_words(p, t0 + hi)
            if head is None:
                if cur:
                    close()  # too short, but p's first word alone would overflow it
                    continue
                # A single word stretched over more than max_s (a cue across a long silence):
                # keep its text, clip its time.
                head = _Piece(p.start, p.start + hi, p.text, p.speaker, sentence_end=p.sentence_end)
                queue.popleft()
            else:
                queue[0] = tail
            cur.append(head)
            close()
            continue
        cur.append(queue.popleft())
        nxt = queue[0] if queue else None
        turn_ends = nxt is not None and nxt.speaker != p.speaker
        if p.end - t0 >= lo and (p.sentence_end or turn_ends):
            close()
    close()

    # A tail shorter than the minimum joins the chunk before it when it fits and continues its turn.
    if len(chunks) >= 2:
        prev, last = chunks[-2], chunks[-1]
        if last[-1].end - last[0].start < lo and last[-1].end - prev[0].start <= hi and prev[-1].speaker == last[0].speaker:
            chunks[-2:] = [prev + last]

    return [_draft(c, label_speakers) for c in chunks]


def _draft(pieces: list[_Piece], label_speakers: bool) -> ChunkDraft:
    turns: list[tuple[str | None, list[_Piece]]] = []
    for p in pieces:
        if turns and turns[-1][0] == p.speaker:
            turns[-1][1].append(p)
        else:
            turns.append((p.speaker, [p]))
    # The text, and where each piece lies in it with its exact times: evidence quoted from the chunk
    # is cited at the time it was said, not at a time shared out by characters.
    out: list[str] = []
    spans: list[list[float]] = []
    pos = 0
    for n, (spk, turn) in enumerate(turns):
        sep = ("\n" if label_speakers else " ") if n else ""
        head = f"{spk}: " if label_speakers and spk else ""
        out.append(sep + head)
        pos += len(sep) + len(head)
        for i, p in enumerate(turn):
            if i:
                out.append(" ")
                pos += 1
            out.append(p.text)
            spans.append([pos, pos + len(p.text), p.start / 1000, p.end / 1000])
            pos += len(p.text)
    speakers: dict[str, None] = {}
    for spk, _ in turns:
        if spk:
            speakers.setdefault(spk)
    return ChunkDraft(
        text="".join(out),
        start_time=pieces[0].start / 1000,
        end_time=pieces[-1].end / 1000,
        meta={"speakers": list(speakers), "spans": spans},
    )


def joined_windows(chunks: Sequence[ChunkDraft], scales: int) -> list[ChunkDraft]:
    """Windows joining ``k`` consecutive ``chunks`` for k = 2..``scales``, in order of scale then
    position. Each carries ``meta["joins"] = [first, last]``: the positions of the chunks it joins
    (their ordinals when the chunks are stored first), and ``meta["scale"] = k``."""
    out: list[ChunkDraft] = []
    for k in range(2, scales + 1):
        for i in range(len(chunks) - k + 1):
            group = chunks[i : i + k]
            speakers: dict[str, None] = {}
            for c in group:
                for spk in (c.meta or {}).get("speakers", []):
                    speakers.setdefault(spk)
            out.append(ChunkDraft(
                text="\n".join(c.text for c in group),
                start_time=group[0].start_time,
                end_time=group[-1].end_time,
                meta={"speakers": list(speakers), "scale": k, "joins": [i, i + k - 1]},
            ))
    return out
