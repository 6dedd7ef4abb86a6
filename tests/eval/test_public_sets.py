"""The public-set retrieval run and its naive baselines, on a miniature of the .evaldata layout:
one meeting as SRT, one git repository, question files in the committed formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lorebase.cli.main import main
from lorebase.errors import InvalidInput
from lorebase.eval.baselines import WindowRetriever, fixed_windows, plain_tokens
from lorebase.eval.public_sets import (
    PublicSets,
    code_questions,
    format_public,
    meeting_questions,
    meeting_set,
    public_settings,
    run_public,
    score_baseline,
    tutorial_questions,
)
from lorebase.ingest.transcripts.segments import Segment
from lorebase.services import Services
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Source
from tests.ingest.gitrepo_helpers import TempRepo

pytestmark = pytest.mark.slow

TOPICS = [
    ("Chair", "Welcome everyone, today we plan the budget for the new microphones."),
    ("Ann", "The head-mounted microphones cost more but pick up less noise from the room."),
    ("Bob", "I would rather spend the money on transcription, the tool keeps crashing."),
    ("Ann", "Transcription crashes when two people talk at once, the overlaps confuse it."),
    ("Chair", "Then let us look at speech and non-speech detection before buying anything."),
    ("Bob", "Detection of silence works if we train on the far-field channel."),
]


def srt(turns: list[tuple[str, str]], seconds: float = 40.0) -> str:
    out = []
    for i, (spk, text) in enumerate(turns):
        a, b = i * seconds, (i + 1) * seconds
        out += [str(i + 1), f"00:{int(a // 60):02d}:{int(a % 60):02d},000 --> 00:{int(b // 60):02d}:{int(b % 60):02d},000",
                f"{spk}: {text}", ""]
    return "\n".join(out)


def build_root(tmp: Path) -> tuple[Path, Path]:
    root, datasets = tmp / "evaldata", tmp / "datasets"
    (root / "meetings").mkdir(parents=True)
    (root / "meetings" / "M001.srt").write_text(srt(TOPICS * 2))  # 12 turns of 40 s: 8 minutes
    repo = TempRepo(root / "repos" / "calc")
    repo.write("calc/ops.py", "def add(a, b):\n    \"\"\"Sum of two numbers.\"\"\"\n    return a + b\n")
    repo.write("calc/text.py", "def shout(s):\n    \"\"\"Upper-case a greeting.\"\"\"\n    return s.upper() + '!'\n")
    repo.write("README.md", "# calc\n\nA calculator.\n")
    repo.commit("Add the calculator")
    datasets.mkdir()
    meetings = [
        {"id": "m1", "meeting": "M001", "split": "train", "question": "Why does the transcription tool crash?",
         "answer": "Overlapping speech.", "gold_spans": [[120.0, 160.0], [360.0, 400.0]]},
        {"id": "m2", "meeting": "M001", "split": "val", "question": "Which microphones pick up less room noise?",
         "answer": "Head-mounted ones.", "gold_spans": [[40.0, 80.0]]},
    ]
    code = [{"id": "c1", "repo": "calc", "commit": repo.head(), "question": "Where are two numbers summed?",
             "answer": "calc/ops.py add", "gold_files": ["calc/ops.py"]}]
    (datasets / "qmsum-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in meetings))
    (datasets / "sweqa-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in code))
    return root, datasets


def test_fixed_windows_bin_cues_by_start_and_keep_speaker_labels() -> None:
    segs = [Segment(0, 20, "a", "Ann"), Segment(20, 65, "b", "Bob"), Segment(65, 70, "c"), Segment(130, 140, "d", "Ann")]
    ws = fixed_windows("m/x", segs, 60)
    assert [(w.start, w.end, w.text) for w in ws] == [(0, 65, "Ann: a\nBob: b"), (65, 70, "c"), (130, 140, "Ann: d")]
    assert plain_tokens("The Tool's crash, e.g. x_y") == ["the", "tool", "s", "crash", "e", "g", "x_y"]
    with pytest.raises(ValueError):
        fixed_windows("m/x", segs, 0)


def test_meetings_are_grouped_by_qmsum_collection() -> None:
    assert [meeting_set(m) for m in ("TS3009b", "ES2002b", "Bed002", "Bro012", "covid_5", "education_18")] == [
        "AMI", "AMI", "ICSI", "ICSI", "committee", "committee"]


def test_naive_bm25_ranks_within_the_lecture() -> None:
    segs = [Segment(i * 60, i * 60 + 50, t, s) for i, (s, t) in enumerate(TOPICS)]
    ret = WindowRetriever(fixed_windows("a", segs) + fixed_windows("b", segs[:2]), "bm25")
    top = ret.rank("transcription crashes overlaps", "a", 3)
    assert top[0].lecture == "a" and "overlaps" in top[0].text and all(w.lecture == "a" for w in top)
    assert ret.rank("microphones", "b", 5)[0].lecture == "b"
    with pytest.raises(ValueError, match="embedding function"):
        WindowRetriever([], "dense")


def add_tutorials(root: Path) -> None:
    """Two short tutorial videos and a question about the second, as bench/build_evalsets.py writes them."""
    (root / "tutorials").mkdir()
    (root / "tutorials" / "101-crop-a-photo.srt").write_text(srt([
        ("Host", "Pick the crop tool and drag a border to cut the edges off the photo."),
        ("Host", "Straighten a tilted horizon by drawing a line along it with the straighten tool."),
    ], 30.0))
    (root / "tutorials" / "102-layer-masks.srt").write_text(srt([
        ("Host", "Add a layer mask to hide part of a layer without erasing any pixels."),
        ("Host", "Paint with black on the mask to hide, and with white to show the layer again."),
    ], 30.0))
    rows = [{"id": "t1", "video": "102-layer-masks", "question": "How do I hide part of a layer without erasing it?",
             "gold_spans": [[0.0, 30.0]]}]
    (root / "tutorialvqa-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_course_wide_baseline_hit_must_be_in_the_gold_lecture() -> None:
    # Both videos have a window at 0-60 s; the question is about the second. Ranked across the
    # course, the first video's window at the right time is no hit.
    segs_a = [Segment(0, 30, "crop tool cut the edges off the photo hide"), Segment(30, 60, "straighten")]
    segs_b = [Segment(0, 30, "layer mask hides pixels"), Segment(30, 60, "paint black on the mask")]
    windows = fixed_windows("tutorials/a", segs_a) + fixed_windows("tutorials/b", segs_b)
    (q,) = tutorial_questions([{"id": "q", "video": "b", "question": "crop the photo edges",
                                "gold_spans": [[0.0, 30.0]]}], ["a", "b"])
    assert q.filters == {"lecture": ["tutorials/a", "tutorials/b"]}
    ranked = WindowRetriever(windows, "bm25").rank(q.question, None, 2)
    assert [w.lecture for w in ranked] == ["tutorials/a", "tutorials/b"]  # the wrong video first
    row = score_baseline(WindowRetriever(windows, "bm25"), [q], 5)
    assert row["hit@1"] == 0.0 and row["hit@5"] == 1.0 and row["mrr"] == 0.5


def test_questions_in_the_committed_formats_become_retrieval_questions(tmp_path: Path) -> None:
    root, datasets = build_root(tmp_path)
    sets = PublicSets.locate(root, datasets)
    (m1, _) = meeting_questions(sets.meeting_rows)
    assert m1.filters == {"lecture": "meetings/M001"} and m1.gold[1] == {"lecture": "meetings/M001", "start": 360.0, "end": 400.0}
    (c1,) = code_questions(sets.code_rows)
    assert c1.filters == {"repo": "calc"} and c1.gold == [{"path": "calc/ops.py", "repo": "calc"}]
    with pytest.raises(InvalidInput, match="build_evalsets"):
        PublicSets.locate(tmp_path / "nowhere", datasets)


def test_one_run_scores_every_set_beside_the_baselines(tmp_path: Path, settings: Settings) -> None:
    root, datasets = build_root(tmp_path)
    report = run_public(settings, root, datasets, k=5, build=Services.build)
    assert report["home"] == str((root / "home").resolve()) and report["ingest"]["failed"] == 0
    meet, icsi, code = report["sets"]
    # One meeting, so the ICSI collection's rows are the whole set's.
    assert icsi["set"] == "qmsum-dev ICSI" and icsi["rows"] == meet["rows"]
    assert meet["set"] == "qmsum-dev" and set(meet["rows"]) == {"bm25", "dense", "hybrid", "naive 60s bm25", "naive 60s minilm"}
    for row in meet["rows"].values():
        assert row["n"] == 2 and 0.0 <= row["hit@1"] <= row["hit@5"] <= 1.0 and row["span_s"] > 0
    # Worked by hand: the naive windows are [0, 80] (turns 0-1), [80, 120] (turn 2), [120, 200] (3-4), ...
    # m2 "microphones ... room noise" -> [0, 80], which overlaps its gold [40, 80]: a hit. m1 "crash":
    # without stemming it matches neither "crashes" nor "crashing", so "transcription tool" picks
    # turn 2's window [80, 120], which only touches the gold [120, 160]: a miss.
    assert meet["rows"]["naive 60s bm25"]["hit@1"] == 0.5
    assert code["set"] == "sweqa calc" and code["rows"]["hybrid"]["hit@1"] == 1.0 and code["rows"]["bm25"]["n"] == 1
    assert not meet["unmatched_gold"] and not code["unmatched_gold"]
    assert "tutorials_home" not in report  # no TutorialVQA built: no set, no home
    table = format_public(report)
    assert "| qmsum-dev | naive 60s bm25 | 2 |" in table and "| sweqa calc | hybrid | 1 | 1.000 |" in table
    # A second run ingests nothing new.
    again = run_public(settings, root, datasets, k=5, baselines=False, build=Services.build)
    assert again["ingest"]["added"] == 0 and set(again["sets"][0]["rows"]) == {"bm25", "dense", "hybrid"}


def test_tutorials_are_searched_across_the_course_in_a_home_of_their_own(tmp_path: Path, settings: Settings) -> None:
    root, datasets = build_root(tmp_path)
    add_tutorials(root)
    report = run_public(settings, root, datasets, k=5, build=Services.build)
    tut = report["sets"][-1]
    assert tut["set"] == "tutorialvqa-dev (2 videos)" and tut["kind"] == "transcript" and not tut["unmatched_gold"]
    assert report["tutorials_home"] == str((root / "home-tutorials").resolve()) and report["tutorials_ingest"]["added"] == 2
    assert set(tut["rows"]) == {"bm25", "dense", "hybrid", "naive 60s bm25", "naive 60s minilm"}
    assert tut["rows"]["hybrid"]["hit@1"] == 1.0 and tut["rows"]["naive 60s bm25"]["n"] == 1
    # The meetings' own home holds no tutorial, so their figures do not move with the course.
    keys = dev_home_sources(settings, root, Source.key)
    assert "transcript:meetings/M001" in keys and not [k for k in keys if "tutorials/" in k]


def dev_home_sources(settings: Settings, root: Path, column: Any) -> set[Any]:
    """``column`` of every source in the dev sets' own home."""
    store = Store(public_settings(settings, root, 200).db_url)
    try:
        with store.session() as s:
            return set(s.scalars(select(column)))
    finally:
        store.close()


def add_repo_set(root: Path, datasets: Path, key: str) -> None:
    """One held-out (or tuning) repository and its question, as bench/build_evalsets.py writes them."""
    repo = TempRepo(root / f"{key}-repos" / "shapes")
    repo.write("shapes/area.py", "def circle_area(r):\n    \"\"\"Area of a circle of radius r.\"\"\"\n    return 3.14159 * r * r\n")
    repo.write("shapes/names.py", "def label(shape):\n    \"\"\"A shape's display name.\"\"\"\n    return shape.title()\n")
    repo.commit("Add shapes")
    row = {"id": "h1", "repo": "shapes", "commit": repo.head(), "question": "Where is the area of a circle computed?",
           "answer": "shapes/area.py circle_area", "gold_files": ["shapes/area.py"]}
    (datasets / f"sweqa-{key}.jsonl").write_text(json.dumps(row) + "\n")


@pytest.mark.parametrize(("key", "label"), [("holdout", "sweqa held-out"), ("tuning", "sweqa tuning")])
def test_held_out_and_tuning_repositories_are_scored_in_a_home_of_their_own(
    tmp_path: Path, settings: Settings, key: str, label: str,
) -> None:
    root, datasets = build_root(tmp_path)
    add_repo_set(root, datasets, key)
    report = run_public(settings, root, datasets, k=5, baselines=False, build=Services.build)
    held = report["sets"][-1]
    assert held["set"] == f"{label} shapes" and held["kind"] == "code" and not held["unmatched_gold"]
    assert report[f"{key}_home"] == str((root / f"home-{key}").resolve()) and report[f"{key}_ingest"]["failed"] == 0
    assert held["rows"]["hybrid"]["n"] == 1 and held["rows"]["hybrid"]["hit@1"] == 1.0
    assert f"| {label} shapes | hybrid | 1 | 1.000 |" in format_public(report)
    # The dev sets' home never holds it, so no dev figure moves with it.
    repos = dev_home_sources(settings, root, Source.repo)
    assert "calc" in repos and "shapes" not in repos
    # Scored before it was ever ingested: it says how to ingest it, instead of a silent zero.
    fresh = tmp_path / "fresh"
    root2, datasets2 = build_root(fresh)
    add_repo_set(root2, datasets2, key)
    again = run_public(settings, root2, datasets2, k=5, ingest=False, baselines=False, build=Services.build)
    assert [p["error"] for p in again["sets"][-1]["problems"]] == [
        f"{(root2 / f'home-{key}').resolve()} holds none of it; run once without --no-ingest"]


def test_a_repository_left_unbuilt_is_left_out_not_scored_as_misses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    root, datasets = build_root(tmp_path)
    add_repo_set(root, datasets, "holdout")
    with (datasets / "sweqa-holdout.jsonl").open("a") as f:  # its mirror was missing when the set was built
        f.write(json.dumps({"id": "h2", "repo": "someone/lost", "question": "Where?", "gold_files": ["lost.py"]}) + "\n")
    with caplog.at_level("WARNING"):
        sets = PublicSets.locate(root, datasets)
    assert [r["id"] for r in sets.holdout_rows] == ["h1"]
    assert "someone/lost is not built" in caplog.text


def test_a_question_row_without_its_gold_is_refused_naming_the_line(tmp_path: Path) -> None:
    root, datasets = build_root(tmp_path)
    add_tutorials(root)
    (root / "tutorialvqa-dev.jsonl").write_text('{"id": "t1", "video": "102-layer-masks", "question": "Why?"}\n')
    with pytest.raises(InvalidInput, match=r"tutorialvqa-dev.jsonl line 1 lacks gold_spans"):
        PublicSets.locate(root, datasets)


def test_scoring_tutorials_never_ingested_says_how_to_ingest_them(tmp_path: Path, settings: Settings) -> None:
    root, datasets = build_root(tmp_path)
    add_tutorials(root)
    report = run_public(settings, root, datasets, k=5, ingest=False, baselines=False, build=Services.build)
    tut = report["sets"][-1]
    assert [p["error"] for p in tut["problems"]] == [f"{(root / 'home-tutorials').resolve()} holds none of the videos; "
                                                     "run once without --no-ingest"]
    assert "run once without --no-ingest" in format_public(report)


def test_the_command_without_a_file_runs_the_public_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root, datasets = build_root(tmp_path)
    monkeypatch.setenv("LOREBASE_HOME", str(tmp_path / "user-home"))
    assert main(["eval", "retrieval", "--public-root", str(root), "--datasets", str(datasets), "--k", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["set"] for s in report["sets"]] == ["qmsum-dev", "qmsum-dev ICSI", "sweqa calc"]
    assert not (tmp_path / "user-home" / "lorebase.db").exists()  # the user's own home is not touched
    assert main(["eval", "retrieval", "--public-root", str(tmp_path / "none"), "--datasets", str(datasets)]) == 2
    assert "build_evalsets" in capsys.readouterr().err
