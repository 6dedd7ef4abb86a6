"""The feedback loop: thumbs-down answers wait for review and a correction becomes a QA pair;
thumbs-up answers become pairs only when their sources support them. Real SQLite, real sources
written by the ingest service, citations made by `cite` exactly as the API and the UI show them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lorebase.api import errors as api_errors
from lorebase.api.routes import feedback as feedback_routes
from lorebase.api.routes import native
from lorebase.citations import cite
from lorebase.cli.main import main
from lorebase.errors import Conflict, InvalidInput, NotFound
from lorebase.feedback.review import FeedbackReview
from lorebase.feedback.service import FeedbackService
from lorebase.finetune.export import load_pairs
from lorebase.ingest.records import ChunkDraft, SourceDraft
from lorebase.ingest.service import IngestService
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import Chunk, Feedback, QAPair, Source, SourceKind, source_id_for, utcnow
from lorebase.verdict import Verdict

DOC_KEY = "doc:acme/jobs:docs/retries.md"
LECTURE_KEY = "transcript:course/lecture-03"
CODE_KEY = "code:acme/jobs:jobs/queue.py"

RETRY = "A failed job is retried three times with exponential backoff, starting at thirty seconds between attempts."
DEAD = "After the third failure the scheduler writes a dead letter record so that an operator can inspect the payload."
FUSION = "Reciprocal rank fusion adds one over sixty plus the rank of the passage for each retriever."
QUEUE = "def enqueue(job):\n    \"\"\"Put the job on the Redis list named pending and return its identifier.\"\"\"\n"


def _ingest(settings: Settings, store: Store) -> None:
    svc = IngestService(settings, store, progress=False)
    svc.upsert(SourceDraft(
        key=DOC_KEY, kind=SourceKind.doc, title="Retries", repo="acme/jobs", path="docs/retries.md", commit="a1b2c3d4e5f6",
        text=f"# Retries\n\n{RETRY}\n\n## Dead letters\n\n{DEAD}\n",
        chunks=[ChunkDraft(f"# Retries\n\n{RETRY}", start_line=1, end_line=3, meta={"heading_path": ["Retries"]}),
                ChunkDraft(f"## Dead letters\n\n{DEAD}", start_line=5, end_line=7, meta={"heading_path": ["Retries", "Dead letters"]})],
    ))
    svc.upsert(SourceDraft(
        key=LECTURE_KEY, kind=SourceKind.transcript, title="Lecture 3: Retrieval", lecture="course/lecture-03",
        text=f"Today we look at hybrid search. {FUSION}",
        chunks=[ChunkDraft("Today we look at hybrid search.", start_time=0.0, end_time=6.5),
                ChunkDraft(FUSION, start_time=70.0, end_time=81.25)],
    ))
    svc.upsert(SourceDraft(
        key=CODE_KEY, kind=SourceKind.code, title="jobs/queue.py", repo="acme/jobs", path="jobs/queue.py", commit="a1b2c3d4e5f6",
        text=QUEUE, chunks=[ChunkDraft(QUEUE, start_line=1, end_line=2, meta={"symbol": "enqueue", "symbol_kind": "function"})],
    ))


@pytest.fixture
def corpus(settings: Settings, store: Store) -> Store:
    _ingest(settings, store)
    return store


def shown(store: Store, key: str, ordinal: int, label: str) -> dict[str, Any]:
    """A citation as the UI and the API record it with an answer."""
    with store.session() as s:
        src = s.get(Source, source_id_for(key))
        assert src is not None
        chunk = s.scalar(select(Chunk).where(Chunk.source_id == src.id, Chunk.ordinal == ordinal))
        return cite(src, chunk, label, score=0.5).model_dump(mode="json")


def chunk_id(store: Store, key: str, ordinal: int) -> int:
    with store.session() as s:
        cid = s.scalar(select(Chunk.id).where(Chunk.source_id == source_id_for(key), Chunk.ordinal == ordinal))
        assert cid is not None
        return cid


def rate(store: Store, rating: int, question: str, answer: str, sources: list[dict[str, Any]], **kw: Any) -> int:
    return FeedbackService(store).record(rating=rating, question=question, answer=answer, sources=sources,
                                         model="smol", **kw)


def pairs(store: Store) -> list[QAPair]:
    with store.session() as s:
        return list(s.scalars(select(QAPair).order_by(QAPair.id)))


def add_pair(store: Store, key: str, split: str) -> None:
    """A generated pair of a source, already in a split."""
    with store.session() as s:
        s.add(QAPair(question=f"What is in {key}?", answer="Something [S1].", chunk_ids=[], source_ids=[source_id_for(key)],
                     kind="doc", category="doc.howto", method="template", validated=True, split=split,
                     question_hash=f"h-{key}-{split}"))


# --- corrections ----------------------------------------------------------------------------------


def test_a_correction_becomes_a_validated_pair_that_points_at_the_cited_source(settings: Settings, corpus: Store) -> None:
    fid = rate(corpus, -1, "How does rank fusion score a passage?", "It averages the scores [S1].",
               [shown(corpus, DOC_KEY, 0, "S1"), shown(corpus, LECTURE_KEY, 1, "S2")], comment="wrong", channel="ui",
               external_id="msg-7", adapter="lora-v2")
    started = utcnow() - timedelta(seconds=1)
    review = FeedbackReview(settings, corpus)
    assert [f["id"] for f in review.list_queue()] == [fid]

    out = review.review(fid, "accept", "Reciprocal rank fusion adds one over sixty plus the rank for each retriever [S2].",
                        reviewer="tutor")

    pair = out["qa_pair"]
    assert pair["method"] == "feedback" and pair["validated"] is True and pair["category"] == "feedback.correction"
    # the gold chunk is the lecture chunk the correction cites, renumbered S1 as every pair's answer is
    assert pair["chunk_ids"] == [chunk_id(corpus, LECTURE_KEY, 1)]
    assert pair["source_ids"] == [source_id_for(LECTURE_KEY)]
    assert pair["answer"].endswith("[S1].") and "[S2]" not in pair["answer"]
    where = pair["provenance"]["sources"][0]
    assert where["source_key"] == LECTURE_KEY and where["start_time"] == 70.0 and where["end_time"] == 81.25
    assert where["lecture"] == "course/lecture-03" and where["chunk_id"] == pair["chunk_ids"][0]
    origin = pair["provenance"]["feedback"]
    assert origin["id"] == fid and origin["reviewer"] == "tutor" and origin["answer_shown"] == "It averages the scores [S1]."
    assert origin["channel"] == "ui" and origin["adapter"] == "lora-v2"
    assert pair["validation"]["grounding"]["supported"] is True

    fb = out["feedback"]
    assert fb["review_status"] == "accepted" and fb["reviewed_at"] and fb["review"]["qa_pair_id"] == pair["id"]
    assert fb["correction"].startswith("Reciprocal rank fusion") and fb["review"]["reviewer"] == "tutor"
    assert review.list_queue() == []  # out of the queue
    assert [f["id"] for f in review.list_queue("accepted")] == [fid]

    # it is training data now: a validated pair made since `started`, in the exported dataset
    with corpus.session() as s:
        fresh = list(s.scalars(select(QAPair.id).where(QAPair.validated.is_(True), QAPair.created_at >= started)))
    assert fresh == [pair["id"]]
    assert [p.id for p in load_pairs(corpus) if p.method == "feedback"] == [pair["id"]]


def test_an_uncited_correction_gets_the_source_that_supports_it(settings: Settings, corpus: Store) -> None:
    fid = rate(corpus, -1, "How often is a failed job retried?", "Once [S2].",
               [shown(corpus, LECTURE_KEY, 0, "S1"), shown(corpus, DOC_KEY, 0, "S2"), shown(corpus, CODE_KEY, 0, "S3")])
    pair = FeedbackReview(settings, corpus).review(fid, "accept", "A failed job is retried three times with exponential backoff.")["qa_pair"]
    assert pair["chunk_ids"] == [chunk_id(corpus, DOC_KEY, 0)]
    assert pair["answer"] == "A failed job is retried three times with exponential backoff [S1]."
    where = pair["provenance"]["sources"][0]
    assert (where["path"], where["start_line"], where["end_line"], where["commit"]) == ("docs/retries.md", 1, 3, "a1b2c3d4e5f6")


def test_reviewing_twice_unknown_ids_and_empty_corrections_are_clear_errors(settings: Settings, corpus: Store) -> None:
    review = FeedbackReview(settings, corpus)
    fid = rate(corpus, -1, "Where is enqueue defined?", "In main.py [S1].", [shown(corpus, CODE_KEY, 0, "S1")])
    with pytest.raises(InvalidInput, match="needs a correction"):
        review.review(fid, "accept", "   ")
    with pytest.raises(InvalidInput, match="accept or reject"):
        review.review(fid, "approve", "x")
    with pytest.raises(InvalidInput, match="S4"):  # a label that was not shown
        review.review(fid, "accept", "In jobs/queue.py [S4].")
    assert review.get(fid)["review_status"] == "pending" and pairs(corpus) == []

    assert review.review(fid, "reject", reviewer="tutor", note="question unclear")["qa_pair"] is None
    assert review.get(fid)["review"] == {"action": "reject", "reviewer": "tutor", "note": "question unclear"}
    with pytest.raises(Conflict, match="already reviewed"):
        review.review(fid, "accept", "The function enqueue is in jobs/queue.py [S1].")
    with pytest.raises(Conflict):
        review.review(fid, "reject")
    with pytest.raises(NotFound):
        review.review(fid + 100, "reject")
    assert pairs(corpus) == [] and review.get(fid)["review_status"] == "rejected"


def test_a_correction_whose_sources_are_gone_is_refused(settings: Settings, corpus: Store) -> None:
    fid = rate(corpus, -1, "Where is enqueue defined?", "In main.py [S1].", [shown(corpus, CODE_KEY, 0, "S1")])
    IngestService(settings, corpus).remove(CODE_KEY)
    with pytest.raises(InvalidInput, match="trace to a source"):
        FeedbackReview(settings, corpus).review(fid, "accept", "In jobs/queue.py.")
    assert pairs(corpus) == []


def test_a_newer_correction_of_the_same_question_retires_the_older_one(settings: Settings, corpus: Store) -> None:
    review = FeedbackReview(settings, corpus)
    src = [shown(corpus, DOC_KEY, 0, "S1")]
    first = rate(corpus, -1, "How often is a failed job retried?", "Once [S1].", src)
    second = rate(corpus, -1, "how often is a failed job  retried?", "Twice [S1].", src)
    old = review.review(first, "accept", "Three times [S1].")["qa_pair"]["id"]
    out = review.review(second, "accept", "A failed job is retried three times [S1].")
    assert out["feedback"]["review"]["superseded_pair_ids"] == [old]
    with corpus.session() as s:
        retired = {p.id: p.retired_at is not None for p in s.scalars(select(QAPair))}
    assert retired == {old: True, out["qa_pair"]["id"]: False}


# --- splits ---------------------------------------------------------------------------------------


def test_a_pair_follows_the_split_its_sources_already_have(settings: Settings, corpus: Store) -> None:
    add_pair(corpus, DOC_KEY, "test")
    add_pair(corpus, CODE_KEY, "train")
    review = FeedbackReview(settings, corpus)
    only_code = rate(corpus, -1, "What does enqueue return?", "Nothing [S1].", [shown(corpus, CODE_KEY, 0, "S1")])
    both = rate(corpus, -1, "How are jobs queued and retried?", "No idea.",
                [shown(corpus, CODE_KEY, 0, "S1"), shown(corpus, DOC_KEY, 0, "S2")])
    assert review.review(only_code, "accept", "It returns the job identifier [S1].")["qa_pair"]["split"] == "train"
    pair = review.review(both, "accept", "enqueue puts the job on the Redis list named pending [S1]. "
                                         "A failed job is retried three times [S2].")["qa_pair"]
    assert pair["source_ids"] == [source_id_for(CODE_KEY), source_id_for(DOC_KEY)]
    assert pair["split"] == "test"  # the doc is a test source: its content stays out of training


def test_a_source_without_pairs_gets_the_split_the_settings_draw(tmp_path: Path) -> None:
    # nearly every source drawn into test: a fresh source's feedback pair goes there too
    settings = load_settings(home=tmp_path / "h", qa={"train_share": 0.001, "validation_share": 0.001})
    settings.ensure_home()
    store = Store(settings.db_url)
    try:
        _ingest(settings, store)
        fid = rate(store, -1, "What does enqueue return?", "Nothing [S1].", [shown(store, CODE_KEY, 0, "S1")])
        assert FeedbackReview(settings, store).review(fid, "accept", "Its identifier [S1].")["qa_pair"]["split"] == "test"
    finally:
        store.close()


# --- thumbs-up ------------------------------------------------------------------------------------


def test_harvest_keeps_supported_thumbs_up_only_and_only_once(settings: Settings, corpus: Store) -> None:
    src = [shown(corpus, LECTURE_KEY, 0, "S1"), shown(corpus, DOC_KEY, 1, "S2")]
    good = rate(corpus, 1, "What happens after the third failure?",
                "The scheduler writes a dead letter record so an operator can inspect the payload [S2].", src)
    invented = rate(corpus, 1, "How long does the scheduler wait?",
                    "The scheduler waits ninety minutes and then deletes the queue entirely [S2].", src)
    repeat = rate(corpus, 1, "what happens after the THIRD failure?",
                  "A dead letter record is written [S2].", src)
    down = rate(corpus, -1, "Anything?", "No [S1].", src)
    review = FeedbackReview(settings, corpus)

    report = review.harvest_positive()

    assert (report.examined, report.added, report.rejected) == (3, 1, 2)
    [pair] = pairs(corpus)
    assert pair.id == report.pair_ids[0] and pair.method == "feedback" and pair.category == "feedback.positive"
    assert pair.validated and pair.validation["supported"] is True and pair.validation["check"] == "grounding"
    assert pair.chunk_ids == [chunk_id(corpus, DOC_KEY, 1)] and pair.answer.endswith("[S1].")
    assert pair.provenance["sources"][0]["start_line"] == 5 and pair.provenance["feedback"]["id"] == good
    status = {f["id"]: f for f in review.list_queue("all", "all")}
    assert status[good]["review_status"] == "accepted" and status[good]["review"]["qa_pair_id"] == pair.id
    assert status[invented]["review_status"] == "rejected" and "not supported" in status[invented]["review"]["reason"]
    assert status[repeat]["review_status"] == "rejected" and f"#{pair.id}" in status[repeat]["review"]["reason"]
    assert status[down]["review_status"] == "pending"  # thumbs-down waits for a reviewer

    again = review.harvest_positive()
    assert (again.examined, again.added) == (0, 0) and len(pairs(corpus)) == 1


def test_harvest_rejects_answers_shown_as_unverified_or_citing_gone_sources(settings: Settings, corpus: Store) -> None:
    src = [shown(corpus, DOC_KEY, 0, "S1"), shown(corpus, CODE_KEY, 0, "S2")]
    # the text alone would pass the check: only the verdict stored with the rating says it was shown unverified
    unverified = Verdict(mode="generated", supported=False, abstained=False, reason="no sentence could be verified")
    flagged = rate(corpus, 1, "How often is a failed job retried?",
                   "A failed job is retried three times with exponential backoff [S1].", src, verdict=unverified)
    gone = rate(corpus, 1, "What does enqueue do?", "It puts the job on the Redis list named pending [S2].", src)
    IngestService(settings, corpus).remove(CODE_KEY)
    review = FeedbackReview(settings, corpus)
    report = review.harvest_positive()
    assert (report.added, report.rejected) == (0, 2) and pairs(corpus) == []
    assert "not verified" in review.get(flagged)["review"]["reason"]
    assert review.get(flagged)["verified"] is False and review.get(flagged)["verdict"]["reason"] == unverified.reason
    assert review.get(gone)["verified"] is None  # no verdict sent: unknown, and the check decides
    assert "S2" in review.get(gone)["review"]["reason"] and "no longer in the store" in review.get(gone)["review"]["reason"]


def test_citations_are_found_again_by_position_and_text(settings: Settings, corpus: Store) -> None:
    # the lecture chunk cited at 70 s, its snippet shortened: the pair's gold chunk is that chunk
    cited = shown(corpus, LECTURE_KEY, 1, "S1")
    cited["snippet"] = cited["snippet"][:30] + "…"
    rate(corpus, 1, "What does reciprocal rank fusion add?",
         "Reciprocal rank fusion adds one over sixty plus the rank for each retriever [S1].", [cited])
    assert FeedbackReview(settings, corpus).harvest_positive().added == 1
    assert pairs(corpus)[0].chunk_ids == [chunk_id(corpus, LECTURE_KEY, 1)]


def test_a_source_edited_since_the_answer_is_cited_where_the_answer_was(settings: Settings, corpus: Store) -> None:
    fid = rate(corpus, -1, "How often is a failed job retried?", "Once [S1].", [shown(corpus, DOC_KEY, 0, "S1")])
    old_chunk = chunk_id(corpus, DOC_KEY, 0)
    edited = RETRY.replace("three times", "five times")
    IngestService(settings, corpus).upsert(SourceDraft(  # re-ingested: new text, new chunk ids, same lines
        key=DOC_KEY, kind=SourceKind.doc, title="Retries", repo="acme/jobs", path="docs/retries.md", commit="f00dfeed",
        text=f"# Retries\n\n{edited}\n\n## Dead letters\n\n{DEAD}\n",
        chunks=[ChunkDraft(f"# Retries\n\n{edited}", start_line=1, end_line=3),
                ChunkDraft(f"## Dead letters\n\n{DEAD}", start_line=5, end_line=7)],
    ))
    pair = FeedbackReview(settings, corpus).review(fid, "accept", "A failed job is retried five times [S1].")["qa_pair"]
    assert pair["chunk_ids"] == [chunk_id(corpus, DOC_KEY, 0)] != [old_chunk]
    assert pair["provenance"]["sources"][0]["commit"] == "f00dfeed" and pair["validation"]["grounding"]["supported"]


# --- API and CLI ----------------------------------------------------------------------------------


def _client(settings: Settings, store: Store) -> TestClient:
    app = FastAPI()
    api_errors.install(app)
    app.include_router(native.router)
    app.include_router(feedback_routes.router)
    app.state.services = Services(settings, store, None, None, None, FeedbackService(store))  # type: ignore[arg-type]
    return TestClient(app)


def test_the_api_queues_thumbs_down_and_reviews_them(settings: Settings, corpus: Store) -> None:
    client = _client(settings, corpus)
    src = [shown(corpus, DOC_KEY, 0, "S1")]
    r = client.post("/v1/feedback", json={"rating": "down", "question": "How often is a failed job retried?",
                                         "answer": "Once [S1].", "sources": src, "model": "smol"})
    assert r.status_code == 201
    fid = r.json()["id"]
    client.post("/v1/feedback", json={"rating": "up", "question": "q?", "answer": "a", "sources": src})

    queue = client.get("/v1/feedback").json()
    assert queue["object"] == "list" and [f["id"] for f in queue["data"]] == [fid]
    assert queue["data"][0]["sources"][0]["source_id"] == source_id_for(DOC_KEY)
    assert len(client.get("/v1/feedback", params={"rating": "all"}).json()["data"]) == 2

    bad = client.post(f"/v1/feedback/{fid}/review", json={"action": "accept", "correction": ""})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    typo = client.post(f"/v1/feedback/{fid}/review", json={"action": "accept", "corection": "Three times [S1]."})
    assert typo.status_code == 400
    missing = client.post(f"/v1/feedback/{fid + 50}/review", json={"action": "reject"})
    assert missing.status_code == 404 and "no feedback" in missing.json()["error"]["message"]

    ok = client.post(f"/v1/feedback/{fid}/review",
                     json={"action": "accept", "correction": "A failed job is retried three times [S1].", "reviewer": "ta"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["qa_pair"]["source_ids"] == [source_id_for(DOC_KEY)] and body["feedback"]["review_status"] == "accepted"
    assert body["qa_pair"]["provenance"]["feedback"]["reviewer"] == "ta"

    twice = client.post(f"/v1/feedback/{fid}/review", json={"action": "reject"})
    assert twice.status_code == 409
    err = twice.json()["error"]
    assert err["code"] == "conflict" and "already reviewed" in err["message"] and set(err) == {"message", "type", "param", "code"}
    assert client.get("/v1/feedback").json()["data"] == []
    assert client.get("/v1/feedback", params={"status": "bogus"}).status_code == 400


def test_the_cli_lists_reviews_and_harvests(settings: Settings, corpus: Store, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("LOREBASE_HOME", str(settings.home))
    src = [shown(corpus, DOC_KEY, 1, "S1")]
    fid = rate(corpus, -1, "What happens after the third failure?", "Nothing [S1].", src)
    rate(corpus, 1, "What does the scheduler write after the third failure?",
         "The scheduler writes a dead letter record [S1].", src)

    assert main(["feedback", "list", "--json"]) == 0
    assert [f["id"] for f in json.loads(capsys.readouterr().out)] == [fid]
    assert main(["feedback", "list"]) == 0
    assert f"#{fid}" in capsys.readouterr().out

    assert main(["feedback", "review", str(fid), "--accept"]) == 2
    assert "--correction" in capsys.readouterr().err
    fix = tmp_path / "fix.txt"
    fix.write_text("The scheduler writes a dead letter record so that an operator can inspect the payload [S1].\n")
    assert main(["feedback", "review", str(fid), "--accept", "--correction-file", str(fix), "--reviewer", "ta", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["qa_pair"]["chunk_ids"] == [chunk_id(corpus, DOC_KEY, 1)] and out["feedback"]["review"]["reviewer"] == "ta"
    assert main(["feedback", "review", str(fid), "--reject"]) == 2
    assert "already reviewed" in capsys.readouterr().err

    assert main(["feedback", "harvest"]) == 0
    assert "1 became QA pairs" in capsys.readouterr().out
    with corpus.session() as s:
        made = list(s.scalars(select(QAPair.category).where(QAPair.method == "feedback").order_by(QAPair.id)))
        assert made == ["feedback.correction", "feedback.positive"]
        assert s.scalar(select(Feedback.review_status).where(Feedback.id == fid)) == "accepted"


def test_a_thumbs_up_taken_back_retires_its_pair_and_waits_for_review(settings: Settings, corpus: Store) -> None:
    src = [shown(corpus, DOC_KEY, 1, "S1")]
    answer = "The scheduler writes a dead letter record [S1]."
    rate(corpus, 1, "What does the scheduler write after the third failure?", answer, src, channel="ui", external_id="m9")
    review = FeedbackReview(settings, corpus)
    assert review.harvest_positive().added == 1
    fid = rate(corpus, -1, "What does the scheduler write after the third failure?", answer, src, channel="ui", external_id="m9")
    [pair] = pairs(corpus)
    assert pair.retired_at is not None and pair.provenance["feedback"]["id"] == fid
    assert [f["id"] for f in review.list_queue()] == [fid]
    assert review.get(fid)["review"]["withdrawn"]["qa_pair_id"] == pair.id
