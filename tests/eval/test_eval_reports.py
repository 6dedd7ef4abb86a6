"""The parts of `lorebase eval` that need no model: the HTML page, comparisons, run records, the CLI."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from lorebase.cli.main import build_parser, main
from lorebase.eval import catalog
from lorebase.eval.compare import compare, format_comparison
from lorebase.eval.report_html import render, render_index
from lorebase.eval.runs import earlier_runs, finish_run, git_commit, list_runs, load_report, report_paths, start_run, write_json
from lorebase.eval.stats import mean, percentile
from lorebase.settings import Settings
from lorebase.store import Store

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/pixel.png">'


def question(qid: str, kind: str, scores: dict[str, float | None], **extra: Any) -> dict[str, Any]:
    return {"id": qid, "kind": kind, "category": None, "question": f"question {qid}", "reference": "ref", "answer": f"answer {qid}",
            "sources": [], "check": None, "latency_s": 1.0, "prompt_tokens": 10, "completion_tokens": 5, "scores": scores,
            "failures": {}, "skipped": {}, "unmatched_gold": [], "error": None, **extra}


def report(run_id: int, questions: list[dict[str, Any]], metrics: dict[str, float | None], **extra: Any) -> dict[str, Any]:
    return {"object": "eval.run", "id": run_id, "status": "ok", "model": "m", "embedder": "e", "index_size": 3,
            "git_commit": None, "eval_set": "set.jsonl", "eval_set_hash": "h1", "adapter": None, "judge": None, "k": 10,
            "questions_total": len(questions), "metrics": metrics, "counts": {}, "by_kind": {},
            "speed": {"latency_p50_s": 1.0, "latency_p95_s": 1.0, "tokens_per_s": 5.0, "answers": len(questions), "completion_tokens": 5},
            "judge_failures": {"total": 0, "attempted": 0, "by_kind": {}, "by_metric": {}, "examples": []},
            "summaries": {"items": []}, "worst": [q["id"] for q in questions], "questions": questions, "problems": [], **extra}


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Parsed:
    p = Parsed()
    p.feed(html)
    p.close()
    return p


# --- the HTML page ----------------------------------------------------------------------------------


def test_report_escapes_every_text_and_loads_nothing() -> None:
    q = question("q<1>", "code", {"rouge_score": 0.2}, question=HOSTILE, answer=HOSTILE, reference=HOSTILE,
                 sources=[{"id": "S1", "label": HOSTILE, "uri": "javascript:alert(1)", "source_id": "src_1", "kind": "code"},
                          {"id": "S2", "label": "safe", "uri": "https://example.org/a.py#L1-L2", "source_id": "src_2", "kind": "code"}],
                 failures={"faithfulness": {"kind": "invalid_output", "message": HOSTILE}})
    r = report(7, [q], {"rouge_score": 0.2}, model=HOSTILE, problems=[{"question": "q<1>", "where": "answer", "error": HOSTILE}],
               judge={"name": HOSTILE, "url": None, "model": "j", "mode": "json"},
               judge_failures={"total": 1, "attempted": 4, "by_kind": {"invalid_output": 1}, "by_metric": {"faithfulness": 1},
                               "examples": [{"question": "q<1>", "metric": "faithfulness", "kind": "invalid_output", "message": HOSTILE}]})
    html = render(r)
    doc = parsed(html)
    assert "script" not in doc.tags and "img" not in doc.tags
    assert not [a for a in doc.attrs if a[1] == "src"]
    hrefs = [v for tag, k, v in doc.attrs if k == "href"]
    assert hrefs == ["https://example.org/a.py#L1-L2"]  # the javascript: address is shown as text, not linked
    text = "".join(doc.text)
    assert text.count(HOSTILE) >= 6  # model, judge, question, reference, answer, source label, failure, problem: as text
    assert "judge failures: 1" in text
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_bars_are_as_long_as_the_scores() -> None:
    html = render(report(1, [question("a", "doc", {"hit@5": 0.5, "mrr": 1.0})], {"hit@5": 0.5, "mrr": 1.0, "hit@1": None}))
    doc = parsed(html)
    widths = [float(v) for tag, k, v in doc.attrs if tag == "rect" and k == "width" and v is not None]
    full = max(widths)  # the grey track behind each bar is the full width
    assert full / 2 in widths and widths.count(full) >= len(catalog.quality_names(10)) + 1  # tracks, plus mrr's full bar
    assert "n/a" in "".join(doc.text)  # hit@1 was not scored: no bar, says so


def test_judged_scores_carry_the_judges_name() -> None:
    judge = {"name": "generator-base (profile base, started for judging) (json_schema)", "url": None, "model": "generator-base",
             "mode": "json_schema"}
    text = "".join(parsed(render(report(1, [], {"faithfulness": 0.5}, judge=judge))).text)
    assert "RAGAS, judged by generator-base (profile base, started for judging) (json_schema)" in text
    assert "RAGAS, judged (no judge in this run)" in "".join(parsed(render(report(2, [], {"mrr": 0.5}))).text)
    runs = [{"id": 1, "status": "ok", "started_at": None, "model": "m", "adapter": None, "eval_set": "s.jsonl",
             "judge": judge["name"], "metrics": {"faithfulness": 0.5}}]
    cells = [t.strip() for t in parsed(render_index(runs)).text if t.strip()]
    assert cells[cells.index("judge") + 1:].count(judge["name"]) == 1 and "0.500" in cells


def test_trend_draws_one_point_per_run_for_each_metric() -> None:
    earlier = [{"id": 2, "metrics": {"hit@5": 0.25, "mrr": 0.5}}, {"id": 4, "metrics": {"hit@5": 0.75, "mrr": None}}]
    doc = parsed(render(report(6, [], {"hit@5": 1.0, "mrr": 0.5}), earlier))
    circles = [v for tag, k, v in doc.attrs if tag == "circle" and k == "cy"]
    assert len(circles) == 3 + 2  # hit@5 in three runs, mrr in two (run 4 has none)
    cys = [float(v) for v in circles[:3] if v is not None]
    assert cys[0] > cys[1] > cys[2]  # 0.25, 0.75, 1.0: higher score, higher on the page (smaller y)


# --- comparing runs -----------------------------------------------------------------------------------


def test_compare_names_metrics_and_questions_that_moved() -> None:
    a = report(1, [question("q1", "code", {"rouge_score": 0.2, "hit@5": 1.0}), question("q2", "doc", {"rouge_score": 0.9, "hit@5": 1.0}),
                   question("q3", "doc", {"rouge_score": 0.5, "hit@5": 0.0}), question("gone", "doc", {"rouge_score": 0.5})],
               {"rouge_score": 0.53, "hit@5": 0.67, "latency_p50_s": 2.0, "tokens_per_s": 10.0})
    b = report(2, [question("q1", "code", {"rouge_score": 0.8, "hit@5": 1.0}), question("q2", "doc", {"rouge_score": 0.1, "hit@5": 1.0}),
                   question("q3", "doc", {"rouge_score": 0.52, "hit@5": 0.0}), question("new", "doc", {"rouge_score": 0.5})],
               {"rouge_score": 0.47, "hit@5": 0.67, "latency_p50_s": 1.5, "tokens_per_s": 8.0}, model="m2")
    c = compare(a, b)
    rows = {m["name"]: m for m in c["metrics"]}
    assert rows["rouge_score"]["verdict"] == "worse" and rows["rouge_score"]["change"] == pytest.approx(-0.06)
    assert rows["hit@5"]["verdict"] == "same"
    assert rows["latency_p50_s"]["verdict"] == "better"  # faster
    assert rows["tokens_per_s"]["verdict"] == "worse"
    # q1: mean (0.2+1)/2=0.6 -> 0.9; q2: 0.95 -> 0.55; q3 moved 0.01, under the threshold
    assert [e["id"] for e in c["better"]] == ["q1"] and [e["id"] for e in c["worse"]] == ["q2"]
    assert [m["name"] for m in c["better"][0]["metrics"]] == ["rouge_score"]
    assert c["only_in_a"] == ["gone"] and c["only_in_b"] == ["new"] and c["identity"] == {"model": {"a": "m", "b": "m2"}}
    text = format_comparison(c)
    assert "| rouge_score | 0.530 | 0.470 | -0.060 worse |" in text
    assert "- q1: 0.600 -> 0.900 (+0.300): rouge_score 0.200 -> 0.800" in text
    assert "- q2: 0.950 -> 0.550 (-0.400): rouge_score 0.900 -> 0.100" in text
    assert "q3" not in text and "model: m -> m2" in text


# --- run records ----------------------------------------------------------------------------------


def test_runs_are_recorded_listed_and_loaded(settings: Settings, store: Store) -> None:
    a = start_run(store, eval_set="s.jsonl", eval_set_hash="h1", model="m", embedder="e", index_size=5, git_commit=None, judge=None)
    b = start_run(store, eval_set="s.jsonl", eval_set_hash="h1", model="m", embedder="e", index_size=5, git_commit=None, judge=None)
    c = start_run(store, eval_set="t.jsonl", eval_set_hash="h2", model="m", embedder="e", index_size=5, git_commit=None, judge=None)
    finish_run(store, a, status="ok", metrics={"mrr": 0.5}, report_path=None)
    finish_run(store, c, status="ok", metrics={"mrr": 0.7}, report_path=None)
    d = start_run(store, eval_set="s.jsonl", eval_set_hash="h1", model="m", embedder="e", index_size=5, git_commit=None, judge=None)
    assert [r["id"] for r in list_runs(store)] == [d, c, b, a]
    assert [r["id"] for r in earlier_runs(store, "h1", d)] == [a]  # b never finished, c is another set
    assert load_report(settings, store, b)["status"] == "running"  # no JSON yet: the row
    json_path, _ = report_paths(settings, a)
    write_json(json_path, report(a, [], {"mrr": 0.5}) | {"status": "written"})
    assert load_report(settings, store, a)["questions"] == [] and load_report(settings, store, a)["status"] == "ok"


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_git_commit_only_for_the_top_of_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    assert git_commit(repo) is None  # no commit yet
    (repo / "f.txt").write_text("x")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "one")
    assert git_commit(repo) == git(repo, "log", "-1", "--format=%H")
    assert git_commit(repo / "sub") is None  # lorebase inside someone else's repository
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_commit(plain) is None


def test_percentile_and_mean_by_hand() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)  # 3 + 0.85 * (4 - 3)
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None
    assert mean([1.0, None, float("nan"), 0.0]) == 0.5 and mean([None]) is None


# --- the command line ---------------------------------------------------------------------------------


def test_eval_run_options_work_with_and_without_the_word_run() -> None:
    parser = build_parser()
    bare = parser.parse_args(["eval", "--set", "x.jsonl", "--limit", "3", "--no-judge"])
    assert bare.action is None and bare.eval_set == Path("x.jsonl") and bare.limit == 3 and bare.no_judge
    before = parser.parse_args(["eval", "--limit", "2", "run", "--judge", "http://h/v1"])
    assert before.action == "run" and before.limit == 2 and before.judge_url == "http://h/v1"
    assert parser.parse_args(["eval", "retrieval", "f.jsonl", "--k", "5"]).k == 5
    assert parser.parse_args(["eval", "compare", "1", "2"]).run_b == 2


def test_eval_list_compare_and_a_missing_set(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOREBASE_HOME", str(settings.home))
    assert main(["eval", "list"]) == 0
    assert "no eval runs yet" in capsys.readouterr().out
    assert main(["eval", "--set", "nowhere.jsonl"]) == 2
    assert "nowhere.jsonl does not exist" in capsys.readouterr().err
    assert main(["eval", "compare", "1", "2"]) == 2
    assert "no eval run 1" in capsys.readouterr().err

    store = Store(settings.db_url)
    try:
        ids = [start_run(store, eval_set="s.jsonl", eval_set_hash="h", model="m", embedder="e", index_size=1, git_commit=None,
                         judge=judge) for judge in (None, "generator-base (profile base, started for judging) (json_schema)")]
        for i, value in zip(ids, (0.25, 0.75), strict=True):
            finish_run(store, i, status="ok", metrics={"mrr": value, "faithfulness": value, "judge_failures": 3}, report_path=None)
    finally:
        store.close()
    # judged scores are listed beside the judge that gave them
    assert main(["eval", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    judged = next(r for r in rows if r.startswith(f"| {ids[1]} "))
    assert "| generator-base (profile base, started for judging) (json_schema) | 0.750 |" in judged
    assert "| none | 0.250 |" in next(r for r in rows if r.startswith(f"| {ids[0]} "))
    assert main(["eval", "compare", str(ids[0]), str(ids[1]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"name": "mrr", "a": 0.25, "b": 0.75, "change": 0.5, "verdict": "better"} in out["metrics"]
    assert out["per_question"] is False and out["judge_failures"] == {"a": 3, "b": 3}
