"""Retrieval metrics on a tiny hand-built case; expected values worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lorebase.cli.main import main
from lorebase.eval.retrieval import evaluate, format_table, load_questions, score_ranking
from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.index.search import SearchService
from lorebase.index.sync import IndexSyncer
from lorebase.settings import Settings
from lorebase.store import Store
from tests.index.conftest import embedder  # noqa: F401  (the session fixture)
from tests.index.corpus import add_source

SHA = "c0ffee" + "1" * 34


def test_score_ranking_by_hand() -> None:
    # ranks:  1  2  3  4  5  6 ; relevant: 2 (gold A) at rank 3, 3 (gold B) at rank 6, gold C never
    ranked = [5, 9, 2, 7, 1, 3]
    hit1, hit5, recall, rr = score_ranking(ranked, [{2}, {3, 4}, {8}], k=4)
    assert (hit1, hit5) == (0.0, 1.0)
    assert recall == pytest.approx(1 / 3)  # only gold A within the top 4
    assert rr == pytest.approx(1 / 3)
    assert score_ranking([3, 1], [{3}], k=10) == (1.0, 1.0, 1.0, 1.0)
    assert score_ranking([], [{3}], k=10) == (0.0, 0.0, 0.0, 0.0)
    assert score_ranking([1, 2, 3, 4, 5, 6], [{6}], k=10) == (0.0, 0.0, 1.0, pytest.approx(1 / 6))


QUESTIONS = [
    {"id": "q1", "question": "alpha", "gold": [{"path": "src/a.py", "lines": [1, 5]}]},
    {"id": "q2", "question": "bravo", "gold": [{"path": "src/a.py", "lines": [1, 5]}, {"issue": 4, "repo": "o/r"}]},
    {"id": "q3", "question": "delta", "gold": [{"issue": 4}, {"commit": "c0ffee1"}]},
    {"id": "q4", "question": "theta", "kind": "transcript", "gold": [{"lecture": "L1", "start": "1:30", "end": 100}]},
    {"id": "q5", "question": "zeta", "gold": [{"lecture": "L1", "start": 70}]},
    {"id": "q6", "question": "alpha", "gold": [{"path": "nope.py"}]},
    {"id": "q7", "question": "epsilon", "gold": [{"commit": "C0FFEE1"}, {"key": "doc:o/r:missing.md"}]},
    {"id": "q8", "question": "alpha", "gold": [{"file": "a.py"}]},
]


def build(store: Store) -> None:
    add_source(
        store, "code:o/r:src/a.py",
        [{"text": "alpha", "start_line": 1, "end_line": 10}, {"text": "bravo", "start_line": 11, "end_line": 20}],
        kind="code", repo="o/r", path="src/a.py", title="first file",
    )
    add_source(store, "issue:o/r#4", ["delta problem"], kind="issue", repo="o/r", number=4, title="an issue")
    add_source(store, f"commit:o/r:{SHA}", ["epsilon fix"], kind="commit", repo="o/r", commit=SHA, title="a commit")
    add_source(
        store, "transcript:L1",
        [{"text": "zeta intro", "start_time": 0.0, "end_time": 60.0}, {"text": "theta more", "start_time": 60.0, "end_time": 120.0}],
        kind="transcript", lecture="L1", title="lecture one",
    )


@pytest.fixture
def service(settings: Settings, store: Store, embedder: LorebaseEmbedding) -> SearchService:  # noqa: F811
    build(store)
    syncer = IndexSyncer(settings, store, embedder, progress=False)
    syncer.sync()
    return SearchService(settings, store, embedder=embedder, dense=syncer.dense)


def write_jsonl(path: Path) -> Path:
    lines = [json.dumps(q) for q in QUESTIONS] + ["{broken json"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_metrics_overall_and_per_kind(service: SearchService, store: Store, tmp_path: Path) -> None:
    report = evaluate(service, store, write_jsonl(tmp_path / "qa.jsonl"), k=10)
    # Each query word is in exactly one chunk, so BM25 returns just that chunk:
    #   q1 alpha -> a.py 1-10: overlaps lines 1-5             hit  recall 1/1  rr 1
    #   q2 bravo -> a.py 11-20: misses 1-5; issue not found   miss recall 0/2  rr 0
    #   q3 delta -> issue #4: one of two gold found            hit  recall 1/2  rr 1
    #   q4 theta -> L1 60-120 s: overlaps 90-100 s             hit  recall 1/1  rr 1
    #   q5 zeta  -> L1 0-60 s: gold starts at 70 s             miss recall 0/1  rr 0
    #   q7 epsilon -> the commit (the missing key is unmatched) hit recall 1/1  rr 1
    # q6 has no gold in the store (unscored); q8 and the broken line are problems.
    bm25 = report["modes"]["bm25"]
    # span_s: the timed results (q4 and q5's one lecture chunk each) are 60 s long.
    assert bm25["overall"] == {"n": 6, "hit@1": 0.6667, "hit@5": 0.6667, "recall@10": 0.5833, "mrr": 0.6667, "span_s": 60.0}
    assert bm25["by_kind"] == {
        "code": {"n": 2, "hit@1": 0.5, "hit@5": 0.5, "recall@10": 0.5, "mrr": 0.5},
        "commit": {"n": 1, "hit@1": 1.0, "hit@5": 1.0, "recall@10": 1.0, "mrr": 1.0},
        "issue": {"n": 1, "hit@1": 1.0, "hit@5": 1.0, "recall@10": 0.5, "mrr": 1.0},
        "transcript": {"n": 2, "hit@1": 0.5, "hit@5": 0.5, "recall@10": 0.5, "mrr": 0.5},
    }
    assert (report["questions"], report["scored"]) == (9, 6)
    assert report["unscored_questions"] == ["q6"]
    assert [(u["question"], u["gold"]) for u in report["unmatched_gold"]] == [
        ("q6", {"path": "nope.py"}),
        ("q7", {"key": "doc:o/r:missing.md"}),
    ]
    assert [p["question"] for p in report["problems"]] == ["q8", "q9"]
    assert "'file'" in report["problems"][0]["error"] and "not JSON" in report["problems"][1]["error"]
    for mode in ("dense", "hybrid"):
        overall = report["modes"][mode]["overall"]
        assert overall["n"] == 6 and all(0.0 <= overall[m] <= 1.0 for m in ("hit@1", "hit@5", "recall@10", "mrr"))
        assert overall["hit@1"] <= overall["hit@5"]

    table = format_table(report)
    assert "| bm25 | all | 6 | 0.667 | 0.667 | 0.583 | 0.667 |" in table
    assert "nope.py" in table and "q8" in table and "Unscored questions" in table


def test_yaml_file_reads_like_jsonl(tmp_path: Path) -> None:
    (tmp_path / "qa.yaml").write_text(yaml.safe_dump({"questions": QUESTIONS[:5]}))
    from_yaml, problems = load_questions(tmp_path / "qa.yaml")
    from_jsonl, _ = load_questions(write_jsonl(tmp_path / "qa.jsonl"))
    assert problems == [] and from_yaml == from_jsonl[:5]
    assert from_yaml[3].gold == [{"lecture": "L1", "start": 90.0, "end": 100.0}]


def test_cli_eval_retrieval_json(
    service: SearchService, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOREBASE_HOME", str(settings.home))
    qa = write_jsonl(tmp_path / "qa.jsonl")
    assert main(["eval", "retrieval", str(qa), "--k", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["k"] == 5 and set(report["modes"]) == {"bm25", "dense", "hybrid"}
    assert report["modes"]["bm25"]["overall"]["recall@5"] == 0.5833
    assert main(["eval", "retrieval", str(tmp_path / "absent.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
