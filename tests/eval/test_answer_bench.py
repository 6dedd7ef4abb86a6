"""The answer benchmark (`lorebase eval answers`): questions scoped to their meeting or repository,
gold citations recognised, metrics summed per set; the extractive row end to end on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorebase.citations import Citation
from lorebase.cli.main import main
from lorebase.eval.answers import AnswerQuestion, cites_gold, load_answer_questions, scope, summarize_rows
from lorebase.services import Services
from lorebase.settings import Settings

# Two meetings that both talk about budgets: a question about one must be answered from that one.
MEETING_A = """1
00:00:00,000 --> 00:00:20,000
Chair: Where does the budget come from? The budget for the microphones and the budget for the remote come from marketing.

2
00:00:20,000 --> 00:00:40,000
Chair: Next time we choose the colours of the case and the shape of the buttons.
"""
MEETING_B = """1
00:00:00,000 --> 00:00:20,000
Grad A: We talked about the recording equipment and the wireless microphones for the meeting room.

2
00:00:20,000 --> 00:00:40,000
Grad B: The money to pay for those comes out of the speech project, so we are fine.
"""


def _ingest(settings: Settings, tmp_path: Path) -> None:
    meetings = tmp_path / "meetings"
    meetings.mkdir()
    (meetings / "design_1.srt").write_text(MEETING_A)
    (meetings / "lab_2.srt").write_text(MEETING_B)
    svc = Services.build(settings)
    try:
        report = svc.ingest.ingest([str(meetings)])
        assert report.ok, report.errors
    finally:
        svc.store.close()


def test_questions_load_by_kind_and_are_scoped_to_their_meeting_or_repository(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(d) for d in [
        {"id": "c1", "repo": "pallets/flask", "question": "How are blueprints registered?", "answer": "x", "gold_files": ["src/flask/app.py"]},
        {"id": "m1", "meeting": "lab_2", "question": "What about the microphones?", "answer": "y", "gold_spans": [[20, 40]]},
        {"id": "u1", "set": "meetings", "meeting": "lab_2", "question": "Which vaccine was approved?"},
        # ingested from another folder (QMSum's train meetings): the row names its lecture key
        {"id": "t1", "meeting": "lab_3", "lecture": "tuning-meetings/lab_3", "question": "Why?", "gold_spans": [[1, 2]]},
    ]) + "\n\n")
    code, meeting, unanswerable, other = load_answer_questions(f)
    assert scope(other) == {"lecture": "tuning-meetings/lab_3"}
    assert not (code.course or meeting.course or other.course)
    assert [q.kind for q in (code, meeting, unanswerable)] == ["code", "meetings", "unanswerable"]
    assert scope(code) == {"repo": "pallets/flask"}
    assert scope(meeting) == scope(unanswerable) == {"lecture": "meetings/lab_2"}
    assert scope(AnswerQuestion(id="x", question="q", kind="unanswerable")) is None


def test_a_cited_gold_file_or_an_overlapping_gold_span_counts_and_nothing_else() -> None:
    code = AnswerQuestion(id="c", question="q", kind="code", gold_files=["src/flask/app.py"])
    meeting = AnswerQuestion(id="m", question="q", kind="meetings", meeting="lab_2", gold_spans=[(20.0, 40.0)])
    def at(kind: str = "code", title: str = "t", **kw: object) -> Citation:
        return Citation(id="S1", source_id="s", kind=kind, title=title, **kw)

    assert cites_gold(code, [at(path="src/flask/app.py")])
    assert cites_gold(code, [at(path="flask/src/flask/app.py")])  # a repository folder in front
    assert not cites_gold(code, [at(path="src/flask/app_context.py")])
    assert not cites_gold(meeting, [at(kind="transcript", title="Design 1", start_time=20.0, end_time=40.0)])  # another meeting
    assert cites_gold(meeting, [at(kind="transcript", title="Lab 2", start_time=35.0, end_time=50.0)])
    assert not cites_gold(meeting, [at(kind="transcript", title="Lab 2", start_time=41.0, end_time=50.0)])


def test_summary_rates_count_answerable_and_unanswerable_apart() -> None:
    def rec(kind: str, *, verified: bool = True, gold: bool | None = True, abstained: bool = False,
            cited: int = 1, cited_gold: int | None = None) -> dict:
        return {"kind": kind, "verified": verified, "cites_gold": gold, "abstained": abstained, "mode": "generated",
                "cited": [{}] * cited, "cited_gold": (int(bool(gold)) if cited_gold is None else cited_gold)
                if kind != "unanswerable" else None,
                "rougeL": 0.5 if kind != "unanswerable" else None, "similarity": 0.5, "prompt_tokens": 100,
                "ttft_s": 1.0, "latency_s": 2.0}

    rows = [rec("code", cited=3, cited_gold=1), rec("code", gold=False), rec("code", verified=False, abstained=True),
            rec("unanswerable", gold=None, abstained=True), rec("unanswerable", gold=None)]
    s = summarize_rows(rows)
    assert s["n"] == 5
    assert s["verified_and_cites_gold"] == round(1 / 3, 3)
    assert s["false_abstention"] == round(1 / 3, 3)
    assert s["abstention"] == 0.5
    # over the two answered answerable questions: 4 sources cited, 1 of them gold
    assert s["citations_mean"] == 2.0 and s["citation_precision"] == 0.25


def _extractive_records(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                        rows: list[dict]) -> list[dict]:
    """The two meetings ingested, ``rows`` written as NAME.jsonl, and the extractive row's records."""
    _ingest(settings, tmp_path)
    questions = tmp_path / f"{name}.jsonl"
    questions.write_text("".join(json.dumps(d) + "\n" for d in rows))
    monkeypatch.setenv("LOREBASE_HOME", str(settings.home))
    out = tmp_path / "out.json"
    assert main(["eval", "answers", str(questions), "--extractive", "--out", str(out)]) == 0
    return list(json.loads(out.read_text())[name]["records"])


@pytest.mark.slow
def test_the_extractive_row_answers_from_the_questions_own_meeting(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The words of the question match meeting A's first line best; its own meeting is B.
    [record] = _extractive_records(settings, tmp_path, monkeypatch, "meetings", [{
        "id": "m1", "meeting": "lab_2", "question": "Where does the budget for the microphones come from?",
        "answer": "The money for the microphones comes out of the speech project.", "gold_spans": [[0, 40]],
    }])
    assert record["mode"] == "extractive" and record["verified"]
    assert [c["label"].split(" @ ")[0] for c in record["cited"]] == ["Lab 2"]
    assert record["cites_gold"] is True, record
    assert "Grad " in record["answer"] and "Chair" not in record["answer"]


@pytest.mark.slow
def test_a_course_question_is_searched_across_every_lecture_and_cites_gold_only_in_its_video(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The two meetings as the videos of one course (TutorialVQA's rows name a video, not a scope).
    rows = [
        {"id": "t1", "video": "lab_2", "question": "Which project pays for the wireless microphones?",
         "answer": "The speech project.", "gold_spans": [[0, 40]]},
        # best matched in the other video: across the course the answer comes from there, and is no gold
        {"id": "t2", "video": "lab_2", "question": "Where does the budget for the remote come from?",
         "answer": "Marketing.", "gold_spans": [[0, 40]]},
    ]
    f = tmp_path / "rows.jsonl"
    f.write_text("".join(json.dumps(d) + "\n" for d in rows))
    assert [(q.kind, q.meeting, q.course, scope(q)) for q in load_answer_questions(f)] == [
        ("meetings", "lab_2", True, {"kind": "transcript"})] * 2
    first, second = _extractive_records(settings, tmp_path, monkeypatch, "tutorialvqa-dev", rows)
    assert [c["label"].split(" @ ")[0] for c in first["cited"]] == ["Lab 2"] and first["cites_gold"] is True
    assert [c["label"].split(" @ ")[0] for c in second["cited"]] == ["Design 1"] and second["cites_gold"] is False
