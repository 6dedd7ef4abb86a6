"""Transcript chunking: time windows, sentence-end boundaries, speaker turns, complete coverage."""

from __future__ import annotations

import itertools
import random

import pytest

from lorebase.ingest.records import ChunkDraft
from lorebase.ingest.transcripts.chunks import chunk_segments, ends_sentence, split_sentences
from lorebase.ingest.transcripts.segments import Segment

EPS = 1e-6


def synthetic_captions(seed: int, n_sentences: int = 300, rate: float = 2.5) -> list[Segment]:
    """Sentences of 4-25 numbered words, cut into caption cues of 5-12 words with no regard for
    sentence ends (like real captions), contiguous in time at `rate` words a second."""
    rng = random.Random(seed)
    words: list[str] = []
    for s in range(n_sentences):
        n = rng.randint(4, 25)
        sentence = [f"w{s}x{i}" for i in range(n)]
        sentence[-1] += rng.choice([".", "?", "!", "."])
        words.extend(sentence)
    segments: list[Segment] = []
    t, i = 0.0, 0
    while i < len(words):
        n = rng.randint(5, 12)
        cue = words[i:i + n]
        dur = round(len(cue) / rate, 3)
        segments.append(Segment(round(t, 3), round(t + dur, 3), " ".join(cue)))
        t += dur
        i += n
    return segments


def words_of(chunks: list[ChunkDraft]) -> list[str]:
    return [w for c in chunks for w in c.text.split()]


def assert_windows(chunks: list[ChunkDraft], lo: float, hi: float) -> None:
    for c in chunks:
        assert c.start_time is not None and c.end_time is not None
        assert c.end_time - c.start_time <= hi + EPS, c
    for c in chunks[:-1]:
        assert c.end_time - c.start_time >= lo - EPS, c


def assert_tiles(chunks: list[ChunkDraft], segments: list[Segment]) -> None:
    """Chunks cover the (contiguous) transcript exactly: no gap, no overlap, every word once."""
    assert words_of(chunks) == [w for s in segments for w in s.text.split()]
    assert chunks[0].start_time == pytest.approx(segments[0].start)
    assert chunks[-1].end_time == pytest.approx(segments[-1].end)
    for a, b in itertools.pairwise(chunks):
        assert a.end_time == pytest.approx(b.start_time, abs=1e-9)
        assert a.start_time < a.end_time


@pytest.mark.parametrize(("seed", "lo", "hi"), [(1, 45.0, 90.0), (2, 45.0, 90.0), (3, 20.0, 40.0), (4, 60.0, 75.0)])
def test_windows_sentence_ends_and_coverage_on_a_long_transcript(seed: int, lo: float, hi: float) -> None:
    segments = synthetic_captions(seed)
    assert segments[-1].end > 10 * hi  # long enough to need many chunks
    chunks = chunk_segments(segments, min_s=lo, max_s=hi)
    assert len(chunks) >= 8
    assert_windows(chunks, lo, hi)
    assert_tiles(chunks, segments)
    # Every sentence here has at most 25 words (10 s), so each window holds a sentence end to close at.
    for c in chunks:
        assert c.text[-1] in ".?!", c.text[-30:]
    assert all(c.meta["speakers"] == [] for c in chunks)
    # each piece's place in the text and its exact times, in order and inside the chunk
    for c in chunks:
        spans = c.meta["spans"]
        assert spans[0][2] == c.start_time and spans[-1][3] == c.end_time
        assert " ".join(c.text[a:b] for a, b, _, _ in spans) == c.text
        assert all(t0 <= t1 for _, _, t0, t1 in spans)


def test_a_single_segment_longer_than_the_window_is_split_at_sentence_ends() -> None:
    sentences = [" ".join(f"s{k}w{i}" for i in range(12)) + "." for k in range(60)]  # 720 words
    seg = Segment(10.0, 10.0 + 720 / 2.5, " ".join(sentences))
    chunks = chunk_segments([seg], min_s=45.0, max_s=90.0)
    assert len(chunks) > 3
    assert_windows(chunks, 45.0, 90.0)
    assert_tiles(chunks, [seg])
    assert all(c.text.endswith(".") for c in chunks)
    assert all(c.text.split()[0].endswith("w0") for c in chunks)  # each starts a sentence


def test_without_any_punctuation_it_splits_at_words_with_interpolated_times() -> None:
    seg = Segment(0.0, 400.0, " ".join(f"w{i}" for i in range(1000)))
    chunks = chunk_segments([seg], min_s=45.0, max_s=90.0)
    assert_windows(chunks, 45.0, 90.0)
    assert_tiles(chunks, [seg])
    # Times follow the words: a chunk's share of the 400 s matches its share of the characters.
    for c in chunks:
        share = (len(c.text) + 1) / (len(seg.text) + 1)
        assert c.end_time - c.start_time == pytest.approx(400.0 * share, abs=1.0)


def test_segment_boundary_past_the_minimum_beats_a_word_split() -> None:
    # 50 s of talk without a sentence end, then a 60 s cue: the chunk closes at the cue boundary.
    segs = [Segment(0.0, 25.0, "one two three four five"), Segment(25.0, 50.0, "six seven eight nine ten"),
            Segment(50.0, 110.0, "eleven twelve thirteen fourteen fifteen.")]
    chunks = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert [(c.start_time, c.end_time) for c in chunks] == [(0.0, 50.0), (50.0, 110.0)]


def test_speaker_change_after_the_minimum_closes_the_chunk() -> None:
    segs = [Segment(i * 10.0, (i + 1) * 10.0, f"alpha{i} keeps talking and talking", "Ada") for i in range(5)]
    segs += [Segment(50.0 + i * 10.0, 60.0 + i * 10.0, f"beta{i} answers at length", "Bo") for i in range(5)]
    chunks = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert chunks[0].end_time == 50.0  # no sentence end anywhere: the turn is the boundary
    assert chunks[0].meta["speakers"] == ["Ada"]
    assert chunks[1].meta["speakers"] == ["Bo"]
    assert chunks[0].text.startswith("Ada: alpha0") and chunks[1].text.startswith("Bo: beta0")


def test_speaker_change_before_the_minimum_stays_in_the_chunk() -> None:
    segs = [Segment(0.0, 10.0, "What is BM25?", "Student"), Segment(10.0, 30.0, "A ranking function.", "Lecturer"),
            Segment(30.0, 50.0, "It is from 1994.", "Lecturer"), Segment(50.0, 60.0, "Thanks.", "Student")]
    chunks = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert len(chunks) == 2
    assert chunks[0].meta["speakers"] == ["Student", "Lecturer"]
    assert chunks[0].text == "Student: What is BM25?\nLecturer: A ranking function. It is from 1994."
    assert (chunks[1].start_time, chunks[1].text) == (50.0, "Student: Thanks.")


def test_one_speaker_gets_no_name_prefix_but_keeps_the_speakers_meta() -> None:
    segs = [Segment(0.0, 30.0, "Hello there.", "Ada"), Segment(30.0, 60.0, "Goodbye.", "Ada")]
    (chunk,) = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert chunk.text == "Hello there. Goodbye."
    assert chunk.meta["speakers"] == ["Ada"]


def test_a_short_tail_joins_the_chunk_before_when_it_fits() -> None:
    segs = [Segment(0.0, 50.0, "A long first sentence."), Segment(50.0, 55.0, "Short end.")]
    (chunk,) = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert (chunk.start_time, chunk.end_time) == (0.0, 55.0)


def test_a_word_stretched_past_the_maximum_keeps_its_text() -> None:
    segs = [Segment(0.0, 10.0, "Intro."), Segment(10.0, 200.0, "Silence"), Segment(200.0, 210.0, "Back.")]
    chunks = chunk_segments(segs, min_s=45.0, max_s=90.0)
    assert words_of(chunks) == ["Intro.", "Silence", "Back."]
    assert_windows(chunks, 0.0, 90.0)


def test_sentence_helpers_skip_abbreviations_and_decimals() -> None:
    assert split_sentences('Dr. Byron said "yes." Then e.g. 3.5 items. Done! OK') == [
        'Dr. Byron said "yes."', "Then e.g. 3.5 items.", "Done!", "OK"
    ]
    assert ends_sentence("Is it?") and ends_sentence('He said "stop."') and ends_sentence("Wait…")
    assert not ends_sentence("as in e.g.") and not ends_sentence("version 3.5 of")


def test_max_below_min_is_refused() -> None:
    with pytest.raises(ValueError):
        chunk_segments([Segment(0, 1, "x")], min_s=10.0, max_s=5.0)


def test_joined_windows_span_consecutive_chunks_with_exact_times_and_positions() -> None:
    from lorebase.ingest.transcripts.chunks import joined_windows

    segments = synthetic_captions(seed=3, n_sentences=80)
    base = chunk_segments(segments, min_s=30, max_s=60)
    assert joined_windows(base, 1) == []
    pairs = joined_windows(base, 2)
    assert len(pairs) == len(base) - 1
    for i, w in enumerate(pairs):
        a, b = base[i], base[i + 1]
        assert (w.start_time, w.end_time) == (a.start_time, b.end_time)
        assert w.text == a.text + "\n" + b.text
        assert w.meta["joins"] == [i, i + 1] and w.meta["scale"] == 2
    three = joined_windows(base, 3)
    assert len(three) == (len(base) - 1) + (len(base) - 2)
    last = three[-1]
    assert last.meta["joins"] == [len(base) - 3, len(base) - 1]
    assert (last.start_time, last.end_time) == (base[-3].start_time, base[-1].end_time)
    assert words_of([last]) == words_of(base[-3:])


def test_joined_windows_list_every_speaker_once_in_order() -> None:
    from lorebase.ingest.transcripts.chunks import joined_windows

    segs = [Segment(0, 40, "We start with the budget.", "Ann"), Segment(40, 80, "Then the schedule.", "Bob"),
            Segment(80, 120, "And the budget again.", "Ann")]
    base = chunk_segments(segs, min_s=30, max_s=45)
    assert [c.meta["speakers"] for c in base] == [["Ann"], ["Bob"], ["Ann"]]
    assert [w.meta["speakers"] for w in joined_windows(base, 3)] == [["Ann", "Bob"], ["Bob", "Ann"], ["Ann", "Bob"]]


def _split_word_by_word(piece, limit):  # type: ignore[no-untyped-def]
    """The definition _split_at_words computes in one step: try the cut after each word in turn."""
    words = piece.text.split(" ")
    span, total, best = piece.end - piece.start, len(piece.text), 0
    for k in range(1, len(words)):
        if piece.start + span * len(" ".join(words[:k])) // total > limit:
            break
        best = k
    if best == 0:
        return None
    return piece.start + span * len(" ".join(words[:best])) // total, " ".join(words[:best]), " ".join(words[best:])


def test_cutting_a_piece_at_a_time_agrees_with_trying_every_word() -> None:
    from lorebase.ingest.transcripts.chunks import _Piece, _split_at_words

    rng = random.Random(7)
    for _ in range(3000):
        words = ["x" * rng.randint(1, 12) for _ in range(rng.randint(1, 30))]
        start = rng.randint(0, 10_000)
        piece = _Piece(start, start + rng.choice([0, 1, 7, rng.randint(0, 200_000)]), " ".join(words), None, True)
        limit = start + rng.randint(-50, 200_000)
        head, tail = _split_at_words(piece, limit)
        want = _split_word_by_word(piece, limit)
        if want is None:
            assert head is None and tail == piece
        else:
            assert head is not None and (head.end, head.text, tail.text) == want and tail.start == head.end


def test_a_paragraph_with_no_sentence_end_is_cut_within_the_window_and_keeps_every_word() -> None:
    rng = random.Random(3)
    words = [f"w{i}" + "x" * rng.randint(0, 9) for i in range(60_000)]  # ~500 KB, one run-on "sentence"
    seg = Segment(0.0, len(words) / 2.5, " ".join(words))
    chunks = chunk_segments([seg], min_s=45, max_s=90)
    assert words_of(chunks) == words
    assert all(c.end_time - c.start_time <= 90 + EPS for c in chunks)
    assert all(a.end_time == b.start_time for a, b in itertools.pairwise(chunks))
    assert chunks[0].start_time == 0.0 and chunks[-1].end_time == pytest.approx(seg.end, abs=1e-3)
    assert len(chunks) >= seg.end / 90
