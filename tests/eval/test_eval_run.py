"""`lorebase eval` end to end: a tiny ingested corpus, the transformers backend on the tiny Llama as the
generator, and a real lorebase API server (the same tiny model, `mode: chat`) as the judge.

The tiny model is random, so the judge answers garbage: every judged score must fail, be counted and
shown, and the run must still finish with every other metric scored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lorebase.cli.main import main
from lorebase.eval import catalog
from lorebase.eval.runner import EvalOptions, EvalRunner
from lorebase.eval.runs import get_run, report_paths
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import Chunk, Source
from tests.api.conftest import Running, free_port, ingest_corpus, serve
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

QUESTIONS = [
    {"id": "e1", "question": "How many times is a failed job retried, and with what backoff?",
     "gold": [{"lecture": "lectures/scheduler", "start": 6, "end": 14}],  # named as ingested (folder/stem)
     "answer": "A failed job is retried three times with exponential backoff, starting at thirty seconds."},
    {"id": "e2", "question": "What does reciprocal rank fusion add for each retriever?",
     "gold": [{"lecture": "Scheduler", "start": "1:10", "end": "1:20"}],  # by its lecture field (the title)
     "answer": "It adds one over sixty plus the rank for each retriever."},
    {"id": "e3", "kind": "issue", "question": "Why did pip install download a CUDA build of torch on a CPU-only machine?",
     "gold": [{"issue": 1, "repo": "lorebase/lorebase"}],
     "answer": "Following the README pulled torch with the nvidia CUDA wheels, about 2.5 GB, and the install ran out of disk space."},
]
SUMMARIES = [
    {"lecture": "lectures/scheduler", "title": "Scheduler",
     "summary": "- A failed job is retried three times with exponential backoff [00:06]\n"
                "- Reciprocal rank fusion adds one over sixty plus the rank [01:10]"},
    {"lecture": "lectures/not-ingested", "title": "Missing", "summary": "- nothing"},
]


def eval_settings(home: Path, tiny_llama: Path, port: int, **eval_overrides: Any) -> Settings:
    return load_settings(
        home=home,
        models={"generator": str(tiny_llama)},
        generation={"backend": "transformers", "max_new_tokens": 24, "max_model_len": 2048},
        server={"port": port},
        eval={"judge_mode": "json", "judge_extra_body": {"mode": "chat"}, "judge_timeout_s": 20,
              "judge_max_tokens": 24, "worst": 3, **eval_overrides},
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def run_eval(settings: Settings, opts: EvalOptions) -> dict[str, Any]:
    svc = Services.build(settings)
    try:
        await svc.start_generator()
        return await EvalRunner(svc.conversation, svc.indexer, gates=svc.gate_status).run(opts)
    finally:
        await svc.aclose()


@dataclass
class Evaluated:
    server: Running
    settings: Settings
    set1: Path
    set2: Path
    first: dict[str, Any]  # judged by the garbage judge, with summaries
    second: dict[str, Any]  # set2 (e2's reference = run 1's answer), no judge
    third: dict[str, Any]  # set1 again, no judge: the trend has two points


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[Evaluated]:
    tmp = tmp_path_factory.mktemp("eval")
    settings = eval_settings(tmp / "home", tiny_llama, free_port())
    ingest_corpus(settings, tmp)
    for server in serve(settings):  # the judge; it also serves the eval routes over the same home
        set1 = write_jsonl(tmp / "set1.jsonl", QUESTIONS)
        summaries = write_jsonl(tmp / "summaries.jsonl", SUMMARIES)
        judged = settings.model_copy(update={"eval": settings.eval.model_copy(update={"judge_url": server.url + "/v1"})})
        first = asyncio.run(run_eval(judged, EvalOptions(eval_set=set1, summaries=summaries)))
        e2_answer = next(q["answer"] for q in first["questions"] if q["id"] == "e2")
        set2 = write_jsonl(tmp / "set2.jsonl", [dict(q, answer=e2_answer) if q["id"] == "e2" else q for q in QUESTIONS])
        second = asyncio.run(run_eval(settings, EvalOptions(eval_set=set2, judge=False)))
        third = asyncio.run(run_eval(settings, EvalOptions(eval_set=set1, judge=False)))
        yield Evaluated(server, settings, set1, set2, first, second, third)


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.svg_text: list[str] = []  # the labels drawn in charts
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open and self._open[-1] == "text":
            self.svg_text.append(data.strip())


def parse(html: str) -> Collect:
    p = Collect()
    p.feed(html)
    p.close()
    return p


def test_run_completes_with_every_judged_score_failed_and_counted(evaluated: Evaluated) -> None:
    r = evaluated.first
    assert r["status"] == "ok" and r["questions_total"] == 3
    jf = r["judge_failures"]
    assert jf["attempted"] > 0
    assert jf["total"] == jf["attempted"]  # a random model never writes the schema's JSON
    assert set(jf["by_kind"]) <= {"invalid_output", "timeout", "error"} and jf["by_kind"].get("invalid_output", 0) > 0
    assert all(r["metrics"][m] is None for m in catalog.JUDGE)
    assert r["judge"]["url"] == evaluated.server.url + "/v1" and r["judge"]["mode"] == "json"
    # ...while everything that needs no judge was scored
    for name in ("hit@1", "hit@5", "mrr", "id_based_context_recall", "rouge_score", "bleu_score", "non_llm_string_similarity"):
        assert r["metrics"][name] is not None and 0.0 <= r["metrics"][name] <= 1.0, name
    assert r["metrics"]["latency_p50_s"] > 0 and r["metrics"]["tokens_per_s"] > 0
    assert r["metrics"]["latency_p95_s"] >= r["metrics"]["latency_p50_s"]
    # gold lectures resolve both by the name they were ingested under and by their lecture field
    assert all("hit@5" in q["scores"] and not q["unmatched_gold"] for q in r["questions"])
    # the issue question's gold is one source, so id-based recall is 1 when the answer cites it
    e3 = next(q for q in r["questions"] if q["id"] == "e3")
    cited = {s["source_id"] for s in e3["sources"]}
    with _store(evaluated.settings) as store, store.session() as s:
        issue_id = s.scalar(select(Source.id).where(Source.kind == "issue", Source.number == 1))
    assert e3["scores"]["id_based_context_recall"] == (1.0 if issue_id in cited else 0.0)


class _store:
    def __init__(self, settings: Settings) -> None:
        self.store = Store(settings.db_url)

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def test_summaries_scored_and_a_missing_lecture_is_a_problem_not_a_crash(evaluated: Evaluated) -> None:
    items = {i["lecture"]: i for i in evaluated.first["summaries"]["items"]}
    done = items["lectures/scheduler"]
    assert done["error"] is None and done["latency_s"] > 0 and done["input_chars"] > 0
    assert 0.0 <= done["summary_rouge1"] <= 1.0 and 0.0 <= done["summary_rougeL"] <= 1.0
    assert items["lectures/not-ingested"]["error"] and items["lectures/not-ingested"]["summary_rouge1"] is None
    assert any(p["question"] == "lectures/not-ingested" for p in evaluated.first["problems"])
    assert evaluated.first["metrics"]["summary_rouge1"] == done["summary_rouge1"]


def test_run_records_model_embedder_index_commit_and_set_hash(evaluated: Evaluated) -> None:
    s = evaluated.settings
    with _store(s) as store:
        row = get_run(store, evaluated.first["id"])
        with store.session() as ses:
            chunks = ses.scalar(select(func.count(Chunk.id)))
    assert row["status"] == "ok" and row["finished_at"]
    assert row["model"] == Path(s.models.generator).name
    assert row["embedder"] == s.models.embedder
    assert row["index_size"] == chunks > 0
    log = subprocess.run(["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%H"], capture_output=True, text=True, check=True)
    head = log.stdout.strip()
    assert row["git_commit"] == head
    assert row["eval_set_hash"] == hashlib.sha256(evaluated.set1.read_bytes()).hexdigest()
    assert row["judge"] and evaluated.server.url in row["judge"]
    assert row["metrics"]["judge_failures"] == evaluated.first["judge_failures"]["total"]
    assert row["metrics"]["questions"] == 3
    # No adapter was trained and no embedder tuned in this home: the report says so for both gates.
    assert evaluated.first["gates"] == {"generator": None, "embedder": None}


def test_html_report_parses_and_shows_every_metric_and_the_failures(evaluated: Evaluated) -> None:
    json_path, html_path = report_paths(evaluated.settings, evaluated.first["id"])
    assert json.loads(json_path.read_text())["id"] == evaluated.first["id"]
    html = html_path.read_text()
    doc = parse(html)
    text = " ".join(doc.text)
    for name in catalog.all_names(evaluated.settings.eval.k):
        assert name in text, name
    assert f"judge failures: {evaluated.first['judge_failures']['total']}" in text
    assert "svg" in doc.tags and doc.tags.count("rect") >= len(catalog.quality_names(10)) + len(catalog.SUMMARY)
    assert "script" not in doc.tags
    assert not [v for k, v in doc.attrs if k in ("src", "href") and v and not v.startswith(("http", "runs/"))]
    assert not [v for k, v in doc.attrs if k == "src"]  # nothing is loaded, from the network or elsewhere
    assert evaluated.first["worst"] and all(qid in text for qid in evaluated.first["worst"])
    assert "transcript" in text and "issue" in text  # the per-kind table


def test_trend_over_earlier_runs_on_the_same_set(evaluated: Evaluated) -> None:
    _, html3 = report_paths(evaluated.settings, evaluated.third["id"])
    doc = parse(html3.read_text())
    ticks = [t for t in doc.svg_text if t.startswith("#")]
    assert "path" in doc.tags and ticks == [f"#{evaluated.first['id']}", f"#{evaluated.third['id']}"]  # run 2: another set
    _, html1 = report_paths(evaluated.settings, evaluated.first["id"])
    assert "no trend yet" in html1.read_text()


def test_compare_names_changed_metrics_and_questions(evaluated: Evaluated, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOREBASE_HOME", str(evaluated.settings.home))
    a, b = evaluated.first["id"], evaluated.second["id"]
    assert main(["eval", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    # run 2's reference for e2 is run 1's answer itself: its ROUGE-L goes to 1.0, nothing else moves
    rouge_row = next(line for line in out.splitlines() if line.startswith("| rouge_score |"))
    assert "better" in rouge_row
    better = out.split("Questions better")[1].split("Questions worse")[0]
    assert "- e2:" in better and "rouge_score" in better and "-> 1.000" in better
    assert "e1" not in better and "e3" not in better
    assert "Questions worse (mean score moved by 0.05 or more): 0" in out
    assert "different eval sets" in out

    assert main(["eval", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(f"| {i} | ok |" in listing for i in (a, b, evaluated.third["id"]))


def test_api_lists_runs_and_serves_reports_as_json_and_html(evaluated: Evaluated) -> None:
    url = evaluated.server.url
    ids = [r["id"] for r in httpx.get(f"{url}/v1/eval/runs", timeout=10).json()["data"]]
    assert ids == sorted(ids, reverse=True) and evaluated.first["id"] in ids and evaluated.third["id"] in ids

    one = httpx.get(f"{url}/v1/eval/runs/{evaluated.first['id']}", timeout=10)
    assert one.headers["content-type"].startswith("application/json")
    body = one.json()
    assert body["id"] == evaluated.first["id"] and body["judge_failures"]["total"] > 0 and len(body["questions"]) == 3

    for resp in (httpx.get(f"{url}/v1/eval/runs/{evaluated.first['id']}", headers={"Accept": "text/html"}, timeout=10),
                 httpx.get(f"{url}/v1/eval/runs/{evaluated.first['id']}?format=html", timeout=10)):
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert f"Evaluation run {evaluated.first['id']}" in resp.text
        assert "default-src 'none'" in resp.headers["content-security-policy"]

    index = httpx.get(f"{url}/v1/eval/runs?format=html", timeout=10)
    assert index.headers["content-type"].startswith("text/html") and f'href="runs/{evaluated.first["id"]}?format=html"' in index.text

    missing = httpx.get(f"{url}/v1/eval/runs/9999", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_cli_runs_the_eval_and_prints_the_table(evaluated: Evaluated, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    s = evaluated.settings
    for key, value in {"HOME": s.home, "MODELS__GENERATOR": tiny_llama, "GENERATION__BACKEND": "transformers",
                       "GENERATION__MAX_NEW_TOKENS": 24, "GENERATION__MAX_MODEL_LEN": 2048}.items():
        monkeypatch.setenv(f"LOREBASE_{key}", str(value))
    assert main(["eval", "--set", str(evaluated.set1), "--no-judge", "--no-summaries", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    run_id = max(evaluated.first["id"], evaluated.second["id"], evaluated.third["id"]) + 1
    assert f"Eval run {run_id}: 2 questions" in captured.out and "judge: none" in captured.out
    assert "| hit@5 | 1.000 | 2 |" in captured.out and "| faithfulness | n/a | 0 |" in captured.out
    assert f"eval-{run_id}.html" in captured.out and "answered 2/2" in captured.err
    assert report_paths(s, run_id)[1].is_file()
