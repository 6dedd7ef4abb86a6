"""Transcript chunks get BM25 statistics of their own: a real store, real bm25s.

Length normalisation (`index.bm25_transcript_b`): with b = 0 a word said once scores the same in a
short window and in a long joined one, while code chunks keep theirs and a long chunk is still
marked down. And IDF and average length: a meeting's scores do not depend on the code in the same
home, nor the code's on the meetings."""

from __future__ import annotations

import numpy as np
import pytest

from lorebase.index.bm25 import Bm25Index
from lorebase.settings import load_settings
from lorebase.store import Store
from tests.index.corpus import add_source, delete_source

FILLER = " ".join(f"word{i}" for i in range(60))


def fill(store: Store) -> dict[str, list[int]]:
    return {
        "meeting": add_source(store, "transcript:m/budget", [
            {"text": "We should fix the microphone budget today.", "start_time": 0.0, "end_time": 45.0},
            {"text": "We should fix the microphone budget today. " + FILLER, "start_time": 0.0, "end_time": 180.0},
        ], kind="transcript", title="Budget meeting", lecture="Budget meeting"),
        "code": add_source(store, "code:o/r:src/audio.py", [
            "def microphone(): return 1",
            "def microphone(): return 1\n" + FILLER,
        ], kind="code", repo="o/r", path="src/audio.py"),
    }


def scores(bm25: Bm25Index, ids: list[int]) -> list[float]:
    _, extra = bm25.search_scoring("microphone", 0, also=ids)
    return [extra[i] for i in ids]


def test_transcript_chunks_are_normalised_for_length_on_their_own(store: Store) -> None:
    ids = fill(store)
    short, long = scores(Bm25Index(store, "english", b=0.75, transcript_b=0.0), ids["meeting"])
    assert short == pytest.approx(long) and short > 0  # no length normalisation for transcripts
    code_short, code_long = scores(Bm25Index(store, "english", b=0.75, transcript_b=0.0), ids["code"])
    assert code_short > 1.5 * code_long  # code keeps b = 0.75
    # one b for every chunk, as before: the long window is marked down like a long code chunk
    same_short, same_long = scores(Bm25Index(store, "english", b=0.75), ids["meeting"])
    assert same_short > 1.5 * same_long
    assert scores(Bm25Index(store, "english", b=0.75), ids["code"]) == pytest.approx([code_short, code_long])
    # in between: the long window is marked down less than with b = 0.75
    mid_short, mid_long = scores(Bm25Index(store, "english", b=0.75, transcript_b=0.4), ids["meeting"])
    assert same_long / same_short < mid_long / mid_short < 1.0


def test_search_builds_its_index_with_the_settings(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lorebase.index.search import SearchService

    ids = fill(store)
    settings = load_settings(home=tmp_path / "home", index={"bm25_transcript_b": 0.0})
    short, long = scores(SearchService(settings, store).bm25, ids["meeting"])
    assert short == pytest.approx(long)
    default = SearchService(load_settings(home=tmp_path / "home"), store).bm25
    d_short, d_long = scores(default, ids["meeting"])
    assert d_long < d_short  # by default a long window is marked down, as a long code chunk is


def test_a_meetings_scores_do_not_depend_on_the_code_beside_it(store: Store) -> None:
    """"test" is said once in the meeting and written in every chunk of the repository: counted over
    the whole home, the repository would make it a common word in the meeting too. A search within
    the meeting (or within the code) scores with its own family's statistics; a search across both
    keeps the pooled ones, which compare across families."""
    meeting = add_source(store, "transcript:m/qa", [
        {"text": "We should test the microphone before the talk.", "start_time": 0.0, "end_time": 45.0},
        {"text": "The budget for the new room is settled.", "start_time": 45.0, "end_time": 90.0},
        {"text": "Next week we test the headsets and the room.", "start_time": 90.0, "end_time": 135.0},
    ], kind="transcript", title="QA meeting", lecture="QA meeting")
    query = "test the microphone"

    def of(ids: list[int], within: list[int] | None = None) -> list[float]:
        scope = np.asarray(ids if within is None else within, dtype=np.int64)
        _, extra = Bm25Index(store, "english").search_scoring(query, 0, scope, also=ids)
        return [extra[i] for i in ids]

    alone = of(meeting)
    assert alone[0] > alone[2] > alone[1] == 0.0
    code = add_source(store, "code:o/r:tests/test_audio.py",
                      [f"def test_case_{i}(): assert test_value({i}) is not None  # test" for i in range(40)],
                      kind="code", repo="o/r", path="tests/test_audio.py")
    assert of(meeting) == pytest.approx(alone)
    assert of(meeting, meeting + code) != pytest.approx(alone)  # across both: the pooled statistics
    beside = of(code)
    assert all(x > 0 for x in beside)
    delete_source(store, "transcript:m/qa")
    assert of(code) == pytest.approx(beside)
