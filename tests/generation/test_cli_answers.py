"""`lorebase ask` and `lorebase summarize` through the real entry point, on an ingested lecture and
the demo GitHub export, with the transformers backend on the tiny offline Llama.

The tiny model's words are random, so what is checked is what the commands promise whatever the
model says: the JSON fields, citations in the one shared shape pointing at the right place of the
right source, the token counts, and clear errors for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lorebase.citations import Citation
from lorebase.cli.main import main
from lorebase.services import Services
from lorebase.settings import load_settings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # each command loads the embedder and the model: ~2-4 s a call

VTT = """WEBVTT

00:00:00.000 --> 00:00:07.000
Welcome back. Today we study the job scheduler of the course project.

00:00:07.000 --> 00:00:16.000
A failed job is retried three times with exponential backoff, starting at thirty seconds.

00:02:05.000 --> 00:02:15.000
After the third failure the scheduler writes a dead letter record for an operator to inspect.
"""
ISSUES = REPO_ROOT / "datasets" / "github" / "lorebase-issues.json"
MAX_NEW = 16


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-answers")
    lectures = root / "lectures"
    lectures.mkdir()
    (lectures / "job-scheduler.vtt").write_text(VTT, encoding="utf-8")
    svc = Services.build(load_settings(home=root / "home"))
    try:
        report = svc.ingest.ingest([str(lectures), str(ISSUES)])
        assert report.ok, report.errors
    finally:
        svc.store.close()
    return root / "home"


@pytest.fixture
def env(home: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {
        "HOME": str(home), "MODELS__GENERATOR": str(tiny_llama), "GENERATION__BACKEND": "transformers",
        "GENERATION__MAX_NEW_TOKENS": str(MAX_NEW), "GENERATION__MAX_MODEL_LEN": "2048",
    }.items():
        monkeypatch.setenv(f"LOREBASE_{key}", value)
    return home


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def citations(raw: list[dict[str, Any]]) -> list[Citation]:
    """Each source exactly in the shared citation shape: no field missing, none extra."""
    for s in raw:
        assert set(s) == set(Citation.model_fields), set(s) ^ set(Citation.model_fields)
    return [Citation.model_validate(s) for s in raw]


def lecture_source_id(home: Path) -> str:
    from sqlalchemy import select

    from lorebase.store import Store
    from lorebase.store.models import Source

    store = Store(load_settings(home=home).db_url)
    try:
        with store.session() as s:
            ids = list(s.scalars(select(Source.id).where(Source.kind == "transcript")))
    finally:
        store.close()
    assert len(ids) == 1
    return ids[0]


def test_ask_json_has_the_answer_and_its_sources_as_citations(env: Path, tiny_llama: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "ask", "How many times is a failed job retried?")
    assert set(data) == {"answer", "sources", "verdict", "usage", "model"}
    assert isinstance(data["answer"], str) and data["answer"].strip()
    sources = citations(data["sources"])
    assert [c.id for c in sources] == [f"S{i}" for i in range(1, len(sources) + 1)]
    # The cue that holds the answer, cited at its own time in the lecture.
    retry = next(c for c in sources if "retried three times" in c.snippet)
    assert retry.kind == "transcript" and retry.source_id == lecture_source_id(env)
    assert retry.start_time is not None and retry.start_time <= 7.0 < (retry.end_time or 0)
    assert retry.uri is not None and retry.uri.endswith(f"t={int(retry.start_time)}")
    v = data["verdict"]
    assert v["mode"] in ("generated", "extractive", "abstained") and isinstance(v["supported"], bool)
    # whatever the tiny model wrote, the shown answer is verified or says it abstained
    assert v["supported"] or v["abstained"]
    assert all(s["supported"] for s in v["sentences"]) or v["removed"] > 0
    assert data["usage"]["prompt_tokens"] > 40  # the sources were in the prompt
    assert 1 <= data["usage"]["completion_tokens"] <= MAX_NEW
    assert data["model"] == tiny_llama.name


def test_ask_prints_the_answer_then_one_line_per_source(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    question = "How many times is a failed job retried?"
    sources = citations(run_json(capsys, "ask", question)["sources"])
    assert main(["ask", question]) == 0
    out = capsys.readouterr().out
    answer, _, listing = out.partition("\n\n[S1]")
    assert answer.strip()
    lines = ("[S1]" + listing).splitlines()
    assert lines == [f"[{c.id}] {c.label}  {c.uri or ''}" for c in sources]
    retry = next(c for c in sources if "retried three times" in c.snippet)
    assert retry.start_time is not None
    at = f"{int(retry.start_time) // 60:02d}:{int(retry.start_time) % 60:02d}"
    assert f"[{retry.id}] Job scheduler @ {at}  lorebase://source/{retry.source_id}#t={int(retry.start_time)}" in lines


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_a_clear_error(env: Path, question: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", question, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # Only the error: refused before the model loads (which would print its progress here).
    assert captured.err.strip() == "error: the question is empty"


def test_summarize_a_lecture_by_title_and_by_id(env: Path, tiny_llama: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lecture_id = lecture_source_id(env)
    by_id = run_json(capsys, "summarize", lecture_id)
    assert set(by_id) == {"title", "summary", "sources", "input_chars", "output_chars", "model"}
    [source] = citations(by_id["sources"])
    assert source.id == "S1" and source.source_id == lecture_id and source.kind == "transcript"
    assert by_id["output_chars"] == len(by_id["summary"]) and by_id["model"] == tiny_llama.name
    # Every cue's words went into the prompt.
    cue_chars = sum(len(line) for line in VTT.splitlines()[3::3])
    assert by_id["input_chars"] >= cue_chars

    by_title = run_json(capsys, "summarize", by_id["title"])
    assert by_title["title"] == by_id["title"] and by_title["sources"] == by_id["sources"]


def test_summarize_an_issue_by_number(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issue = json.loads(ISSUES.read_text(encoding="utf-8"))[0]
    data = run_json(capsys, "summarize", f"#{issue['number']}")
    [source] = citations(data["sources"])
    assert source.number == issue["number"] and source.kind in ("issue", "pull_request")
    assert data["title"] == source.title and issue["title"] in source.title


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("no such lecture", "no lecture titled or identified 'no such lecture'"),
        ("src_0000000000", "no such source: src_0000000000"),
        ("#987654", "no issue or pull request #987654"),
    ],
)
def test_summarize_an_unknown_source_is_a_clear_error(env: Path, source: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", source, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # Only the error: refused before the model loads (which would print its progress here).
    assert captured.err.strip() == f"error: {says}"


def test_eval_answers_runs_the_conversation_and_the_extractive_row(env: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    questions = tmp_path / "meetings.jsonl"
    questions.write_text(json.dumps({"id": "m1", "question": "How often is a failed job retried?",
                                     "gold_spans": [[7, 16]], "answer": "Three times, with exponential backoff."}) + "\n"
                         + json.dumps({"id": "u1", "question": "What colour is the office carpet?"}) + "\n")
    for extra in ([], ["--extractive"]):
        out = tmp_path / f"answers{len(extra)}.json"
        summary = run_json(capsys, "eval", "answers", str(questions), "--out", str(out), *extra)
        row = summary["meetings"]
        assert row["n"] == 2 and row["similarity"] is not None  # the embedder compared answer and reference
        records = json.loads(out.read_text())["meetings"]["records"]
        answered = next(r for r in records if r["id"] == "m1")
        assert answered["mode"] in ({"extractive"} if extra else {"generated", "extractive", "abstained"})
        assert answered["latency_s"] >= 0 and "similarity" in answered
        if not extra and answered["mode"] != "abstained":  # each sentence with the check's ruling
            kept = [x for x in answered["sentences"] if x["supported"]]
            assert kept and all(set(x) == {"text", "supported", "reason"} for x in answered["sentences"])
            assert all(x["text"].split()[0] in answered["answer"] for x in kept)
    # --model names what answers (a tuned adapter against its base): a name nobody serves is refused
    assert main(["eval", "answers", str(questions), "--model", "no-such-adapter"]) == 2
    assert "the model 'no-such-adapter' does not exist" in capsys.readouterr().err
