"""File-level and symbol-level BM25 and the priors hybrid fusion adds: a real store, real bm25s, worked by hand."""

from __future__ import annotations

import pytest

from lorebase.index.bm25 import Bm25Index, symbol_text
from lorebase.index.fusion import convex_fusion
from lorebase.index.search import FusionInputs, fuse, prior_terms
from lorebase.settings import RetrievalSettings
from lorebase.store import Store
from tests.index.corpus import add_source


def fill(store: Store) -> dict[str, list[int]]:
    return {
        # The session file: its words are spread over two chunks; neither chunk has them all.
        "sessions": add_source(store, "code:o/r:src/sessions.py",
                               ["class SessionInterface:\n    def open_session(self, app, request): ...",
                                "def save_session(self, app, session, response):\n    response.set_cookie(app.cookie_name)"],
                               kind="code", repo="o/r", path="src/sessions.py", title="src/sessions.py"),
        # One chunk that repeats two of the words, in a file about something else.
        "cookies": add_source(store, "doc:o/r:docs/cookies.md", ["Cookie cookie cookie: the response sets a cookie."],
                              kind="doc", repo="o/r", path="docs/cookies.md", title="docs/cookies.md"),
        "commit": add_source(store, "commit:o/r:" + "a" * 40, ["Open the session before saving the response cookie"],
                             kind="commit", repo="o/r", commit="a" * 40, title="a commit"),
    }


def test_a_file_scores_as_one_document_and_other_kinds_score_zero(store: Store) -> None:
    ids = fill(store)
    bm25 = Bm25Index(store, "english")
    all_ids = [i for v in ids.values() for i in v]
    files, kinds = bm25.file_scores("how is the session opened and saved with the response cookie", all_ids + [999])
    a, b = ids["sessions"]
    assert files[a] == files[b] > 0  # both chunks get their file's score
    assert files[ids["commit"][0]] == 0.0 and kinds[ids["commit"][0]] == "commit"  # commits are not files
    assert files[ids["cookies"][0]] > 0 and kinds[a] == "code" and 999 not in files
    # The session file holds more of the words than the cookie page does.
    assert files[a] > files[ids["cookies"][0]]
    assert bm25.file_scores("zebra", all_ids)[0] == {i: 0.0 for i in all_ids}
    # Each chunk of a file knows its siblings (for the file-level dense score); a commit has none.
    members = bm25.file_members(all_ids)
    assert members[a].tolist() == members[b].tolist() == [a, b]
    assert members[ids["cookies"][0]].tolist() == ids["cookies"] and ids["commit"][0] not in members


def test_priors_add_the_normalised_file_score_and_the_kind_bias() -> None:
    terms = prior_terms([1, 2, 3, 1], {1: 4.0, 2: 2.0, 3: 0.0}, {1: "code", 2: "doc", 3: "commit"}, 0.5,
                        {"commit": -0.2, "doc": -0.1})
    assert terms == pytest.approx({1: 0.5, 2: 0.25 - 0.1, 3: -0.2})
    assert prior_terms([], {}, {}, 0.5, {}) == {}
    # Added to the fused score, they can turn the order.
    # Chunk 2 wins both retrievers (fused 1.0 against 0.0); chunk 1's file prior of 1.2 puts it first.
    fused = convex_fusion([1, 2], {1: 0.4, 2: 0.5}, {1: 1.0, 2: 2.0}, 0.5, {1: 1.2, 2: 0.0})
    assert fused == [(1, pytest.approx(1.2)), (2, pytest.approx(1.0))]


def test_a_definition_is_also_scored_by_its_names_alone(store: Store) -> None:
    method = {"text": "    def get_command(self, ctx, name):\n        return self.commands.get(name)",
              "meta": {"symbol": "FlaskGroup.get_command", "symbol_kind": "method", "context": "class FlaskGroup(AppGroup):",
                       "signature": "def get_command(self, ctx, name):"}}
    # Its body says "group" and "command" over and over, but its names say neither.
    wordy = {"text": "group command group command: the group runs the command", "meta": {"symbol": "run_all",
             "symbol_kind": "function", "signature": "def run_all():"}}
    module = {"text": "import click", "meta": {"symbol": "src.cli", "symbol_kind": "module"}}
    code = add_source(store, "code:o/r:src/cli.py", [method, wordy, module], kind="code", repo="o/r", path="src/cli.py")
    doc = add_source(store, "doc:o/r:docs/cli.md", [{"text": "Run it.", "meta": {"heading_path": ["Command groups"]}}],
                     kind="doc", repo="o/r", path="docs/cli.md")
    commit = add_source(store, "commit:o/r:" + "b" * 40, ["Fix the group command"], kind="commit", repo="o/r", commit="b" * 40)
    bm25 = Bm25Index(store, "english")
    scores = bm25.symbol_scores("the CLI group class's command retrieval method", code + doc + commit)
    assert scores[doc[0]] > 0  # "Command groups"
    # get_command's names hold "group", "command" and (its path) "cli"; run_all's only its path.
    assert scores[code[0]] > scores[code[1]] > 0
    assert scores[commit[0]] == 0.0
    assert symbol_text("code", "src/cli.py", method["meta"]) == (
        "src/cli.py\nFlaskGroup.get_command\nclass FlaskGroup(AppGroup):\ndef get_command(self, ctx, name):")
    assert symbol_text("code", "src/cli.py", module["meta"]) == "src/cli.py\nsrc.cli"
    assert symbol_text("code", "run.sh", {"symbol_kind": "module"}) == "run.sh"
    assert symbol_text("commit", None, {}) == ""


def test_a_question_naming_a_file_meets_its_head_no_lower_than_its_functions(store: Store) -> None:
    """The code between definitions (imports, the module docstring, constants) is known by its
    path and module name: "what does FILE do" must not lift the file's functions over its head."""
    head = {"text": '"""Retry failed jobs with exponential backoff."""\nMAX_ATTEMPTS = 5',
            "meta": {"symbol": "jobs.retry", "symbol_kind": "module"}}
    backoff = {"text": "    def backoff(self, attempt):\n        return 2 ** attempt",
               "meta": {"symbol": "RetryPolicy.backoff", "symbol_kind": "method", "context": "class RetryPolicy:",
                        "signature": "def backoff(self, attempt):"}}
    run = {"text": "def run_with_retry(job):\n    ...", "meta": {"symbol": "run_with_retry", "symbol_kind": "function",
                                                          "signature": "def run_with_retry(job):"}}
    ids = add_source(store, "code:o/r:jobs/retry.py", [head, backoff, run], kind="code", repo="o/r", path="jobs/retry.py")
    other = add_source(store, "code:o/r:jobs/queue.py", [{"text": "QUEUE = []", "meta": {"symbol": "jobs.queue",
                                                                                       "symbol_kind": "module"}}],
                       kind="code", repo="o/r", path="jobs/queue.py")
    scores = Bm25Index(store, "english").symbol_scores("What does jobs/retry.py do?", ids + other)
    assert scores[ids[0]] >= max(scores[ids[1]], scores[ids[2]]) > 0
    assert scores[ids[0]] > scores[other[0]]  # another file of the package shares only "jobs"


def test_fuse_adds_each_weighted_prior_and_without_weights_is_plain_convex_fusion() -> None:
    inputs = FusionInputs([1, 2, 3], dense={1: 0.2, 2: 0.9, 3: 0.5}, bm25={1: 1.0, 2: 3.0, 3: 2.0},
                          files={1: 0.0, 2: 0.0, 3: 0.0}, kinds={1: "code", 2: "code", 3: "commit"},
                          file_dense={1: 0.1, 2: 0.3}, symbols={1: 5.0, 2: 0.0, 3: 0.0})
    plain = RetrievalSettings(file_weight=0.0, file_dense_weight=0.0, symbol_weight=0.0, kind_bias={})
    assert fuse(inputs, plain) == convex_fusion([1, 2, 3], inputs.dense, inputs.bm25, plain.dense_weight)
    assert [i for i, _ in fuse(inputs, plain)] == [2, 3, 1]
    # Chunk 1's name matches: symbol weight 1.5 lifts it (fused 0 + 1.5) over chunk 2 (1.0).
    named = plain.model_copy(update={"symbol_weight": 1.5})
    assert fuse(inputs, named)[0] == (1, pytest.approx(1.5))
    # The file-level dense score is normalised over the files among the candidates: chunk 2 gets the full weight.
    files = plain.model_copy(update={"file_dense_weight": 0.5, "kind_bias": {"commit": -1.0}})
    assert dict(fuse(inputs, files)) == pytest.approx({2: 1.5, 1: 0.0, 3: 0.4 * 0.3 / 0.7 + 0.6 * 0.5 - 1.0})


def meeting(store: Store) -> list[int]:
    """A meeting where the professor asks about the microphones and C answers about them."""
    speakers = ["Professor B", "Grad C"]
    return add_source(store, "transcript:m/bed002", [
        {"text": "Professor B: What about the microphones? Microphones near the mouth, microphones far away?\n"
                 "Grad C: Hmm.", "start_time": 0.0, "end_time": 60.0, "meta": {"speakers": speakers}},
        {"text": "Grad C: The microphones should sit away from the mouth, the breathing is loud.\n"
                 "Professor B: OK.", "start_time": 60.0, "end_time": 120.0, "meta": {"speakers": speakers}},
        {"text": "A chunk without speaker metadata.", "start_time": 120.0, "end_time": 180.0},
    ], kind="transcript", lecture="m/bed002", title="Bed002")


def test_speaker_shares_are_the_named_speakers_words_in_each_window(store: Store) -> None:
    asks, answers, plain = meeting(store)
    code = fill(store)["sessions"][0]
    bm25 = Bm25Index(store, "english")
    got = bm25.speaker_shares("What did C think about the microphones?", [asks, answers, plain, code, 999])
    # C says 1 of the first window's 12 words and 12 of the second's 13; chunks without speakers are left out.
    assert got == pytest.approx({asks: 1 / 12, answers: 12 / 13})
    assert bm25.speaker_shares("What did the Professor think?", [asks, answers]) == pytest.approx({asks: 11 / 12, answers: 1 / 13})
    # A question that names nobody of the meeting (or someone of another one) gives nothing.
    assert bm25.speaker_shares("What was said about the microphones?", [asks, answers]) == {}
    assert bm25.speaker_shares("What did Kirsty Williams say?", [asks, answers]) == {}


def test_fuse_adds_the_speaker_share_only_with_a_weight() -> None:
    # Chunk 1 wins both retrievers; chunk 2 is where the named speaker talks.
    inputs = FusionInputs([1, 2], {1: 0.6, 2: 0.5}, {1: 3.0, 2: 2.0}, speakers={1: 0.1, 2: 0.9})
    assert [i for i, _ in fuse(inputs, RetrievalSettings(kind_bias={}, file_weight=0, file_dense_weight=0))] == [1, 2]
    boosted = fuse(inputs, RetrievalSettings(kind_bias={}, file_weight=0, file_dense_weight=0, speaker_weight=1.5))
    assert boosted == [(2, pytest.approx(1.5 * 0.9)), (1, pytest.approx(1.0 + 1.5 * 0.1))]


def test_a_file_is_also_scored_by_its_path_alone(store: Store) -> None:
    ids = fill(store)
    dialect = add_source(store, "code:o/r:src/dialects/dialect_bigquery.py", ["class MergeSegment: ...", "class ForInSegment: ..."],
                         kind="code", repo="o/r", path="src/dialects/dialect_bigquery.py", title="src/dialects/dialect_bigquery.py")
    ansi = add_source(store, "code:o/r:src/dialects/dialect_ansi.py", ["# BigQuery overrides some of these\nclass MergeSegment: ..."],
                      kind="code", repo="o/r", path="src/dialects/dialect_ansi.py", title="src/dialects/dialect_ansi.py")
    bm25 = Bm25Index(store, "english")
    every = [i for v in ids.values() for i in v] + dialect + ansi
    got = bm25.path_scores("Where is the BigQuery dialect's merge segment?", every)
    # Both chunks of the BigQuery file get its path's score; the ANSI file's body names BigQuery, its path does not.
    assert got[dialect[0]] == got[dialect[1]] > got[ansi[0]] > 0  # "dialect" is in both paths
    assert got[ids["commit"][0]] == 0.0 and got[ids["sessions"][0]] == 0.0
    # Added to the fused score only with a weight.
    c = ids["commit"][0]
    inputs = FusionInputs([ansi[0], dialect[0], c], {ansi[0]: 0.6, dialect[0]: 0.58, c: 0.1},
                          {ansi[0]: 3.0, dialect[0]: 2.9, c: 0.0}, paths=got)
    plain = RetrievalSettings(kind_bias={}, file_weight=0, file_dense_weight=0)
    assert [i for i, _ in fuse(inputs, plain)] == [ansi[0], dialect[0], c]
    assert [i for i, _ in fuse(inputs, plain.model_copy(update={"path_weight": 1.0}))] == [dialect[0], ansi[0], c]
