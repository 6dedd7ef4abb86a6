"""The transcript reader on real files: folders, sidecars, duplicates, bad files, and the demo lectures."""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lorebase.ingest.records import Fail, ReadContext, ScopeComplete, Skip, SourceDraft, Upsert
from lorebase.ingest.service import IngestService
from lorebase.ingest.transcripts.reader import TranscriptReader, is_transcript_file
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Source, SourceKind

DEMO = Path(__file__).resolve().parents[3] / "datasets" / "transcripts"

VTT = """WEBVTT

00:00:01.000 --> 00:00:05.000
<v Dr. Ada>Welcome to the lecture on BM25.

00:00:05.000 --> 00:00:09.000
<v Sam>What does the b parameter do?

00:00:09.000 --> 00:00:14.000
<v Dr. Ada>It normalises for document length.
"""

SRT = """1
00:00:01,000 --> 00:00:04,000
Hello from the SRT file.

2
00:00:04,000 --> 00:00:08,000
It has two cues.
"""

WHISPER = {"segments": [{"start": 0.0, "end": 3.0, "text": " Machine transcript."}, {"start": 3.0, "end": 6.0, "text": " Next."}]}


def read(paths: list[Path], settings: Settings) -> list[object]:
    ctx = ReadContext(cursor=lambda name: None, known_hash=lambda key: None)
    return list(TranscriptReader(paths, settings).read(ctx))


def upserts(events: list[object]) -> dict[str, SourceDraft]:
    return {e.draft.key: e.draft for e in events if isinstance(e, Upsert)}


def fails(events: list[object]) -> dict[str, str]:
    return {e.ref: e.reason for e in events if isinstance(e, Fail)}


def skips(events: list[object]) -> dict[str, str]:
    return {e.ref: e.reason for e in events if isinstance(e, Skip)}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- one lecture ------------------------------------------------------------------------------


def test_single_vtt_file_becomes_a_timed_source(tmp_path: Path, settings: Settings) -> None:
    f = write(tmp_path / "ml-course" / "2024-03-05_intro-to-rag.vtt", VTT)
    events = read([f], settings)
    assert not any(isinstance(e, ScopeComplete) for e in events)  # a single file is no scope
    (draft,) = upserts(events).values()
    assert draft.key == "transcript:2024-03-05_intro-to-rag"
    assert draft.kind == SourceKind.transcript
    # No sidecar: the title and date come from the file name, the course from the folder.
    assert draft.title == draft.lecture == "Intro to rag"
    assert draft.authored_at == datetime(2024, 3, 5, tzinfo=UTC)
    assert (draft.start_time, draft.end_time) == (1.0, 14.0)
    assert draft.meta["course"] == "ml-course"
    assert draft.meta["format"] == "webvtt"
    assert draft.meta["speakers"] == ["Dr. Ada", "Sam"]
    assert draft.meta["file"] == "2024-03-05_intro-to-rag.vtt"
    assert draft.meta["segments"] == 3
    assert draft.url is None and draft.meta["licence"] is None
    # The readable text keeps every word, with time markers and names.
    assert draft.text.startswith("[00:01] Dr. Ada: Welcome to the lecture on BM25.")
    assert "Sam: What does the b parameter do?" in draft.text
    assert "It normalises for document length." in draft.text
    (chunk,) = draft.chunks
    assert chunk.meta["speakers"] == ["Dr. Ada", "Sam"]


def test_sidecar_yaml_gives_the_metadata(tmp_path: Path, settings: Settings) -> None:
    f = write(tmp_path / "c" / "lec1.srt", SRT)
    write(tmp_path / "c" / "lec1.yaml", """
title: "BM25 in depth"
course: Search 101
date: 2024-05-06
url: https://example.org/search/lec1
licence: CC-BY-4.0
speakers: [Prof. Karen]
id: search101/bm25
""")
    (draft,) = upserts(read([f], settings)).values()
    assert draft.key == "transcript:search101/bm25"
    assert (draft.title, draft.lecture, draft.url) == ("BM25 in depth", "BM25 in depth", "https://example.org/search/lec1")
    assert draft.authored_at == datetime(2024, 5, 6, tzinfo=UTC)
    assert draft.meta["course"] == "Search 101" and draft.meta["licence"] == "CC-BY-4.0"
    # One listed speaker names the unnamed monologue.
    assert draft.meta["speakers"] == ["Prof. Karen"]
    assert draft.chunks[0].meta["speakers"] == ["Prof. Karen"]
    assert draft.text.startswith("[00:01] Prof. Karen: Hello from the SRT file.")


def test_json_sidecar_is_metadata_not_a_transcript(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    write(folder / "lec1.vtt", VTT)
    sidecar = write(folder / "lec1.json", json.dumps({"title": "From JSON", "license": "MIT", "speakers": {"Sam": "Samira"}}))
    assert not is_transcript_file(sidecar)
    assert is_transcript_file(folder / "lec1.vtt")
    events = read([folder], settings)
    assert fails(events) == {} and skips(events) == {}
    (draft,) = upserts(events).values()
    assert draft.title == "From JSON" and draft.meta["licence"] == "MIT"
    assert draft.meta["speakers"] == ["Dr. Ada", "Samira"]  # a mapping renames speaker labels
    # Given on its own, the sidecar is skipped, not read as a broken transcript.
    assert list(skips(read([sidecar], settings)).values()) == ["metadata sidecar of a transcript beside it, not a transcript"]


def test_a_lone_json_without_segments_fails(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    f = write(folder / "notes.json", json.dumps({"title": "no transcript here"}))
    assert is_transcript_file(f)  # nothing beside it to be the sidecar of
    events = read([folder], settings)
    assert fails(events) == {"transcript:course/notes": 'notes.json: JSON has no transcript segments: expected {"segments": '
                             '[{"start", "end", "text"}]}, a list of {"start", "end" or "duration", "text"}, or YouTube json3 '
                             '{"events": [...]}'}


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        ("title: [unclosed", "sidecar lec.yaml is not valid YAML"),
        ("- just\n- a list\n", "sidecar lec.yaml must hold a mapping"),
        ("date: next tuesday\n", "lec.yaml: date 'next tuesday' is not a date"),
        ("speakers: 42\n", "'speakers' must be a list of names"),
        ("title: {a: 1}\n", "'title' must be text"),
    ],
)
def test_bad_sidecars_fail_with_a_reason(tmp_path: Path, settings: Settings, sidecar: str, reason: str) -> None:
    f = write(tmp_path / "lec.vtt", VTT)
    write(tmp_path / "lec.yaml", sidecar)
    (got,) = fails(read([f], settings)).values()
    assert got.startswith("lec.vtt: ") and reason in got


def test_cp1252_file_is_read_not_refused(tmp_path: Path, settings: Settings) -> None:
    data = "1\r\n00:00:01,000 --> 00:00:04,000\r\nLe caf\u00e9 est ouvert \u2013 it\u2019s open.\r\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    f = write(tmp_path / "cafe.srt", data)
    (draft,) = upserts(read([f], settings)).values()
    assert "Le café est ouvert – it’s open." in draft.text
    assert draft.meta["encoding"] == "cp1252"


def test_plain_text_without_times_is_marked_estimated(tmp_path: Path, settings: Settings) -> None:
    body = " ".join(f"word{i}" for i in range(299)) + " end."  # 300 words: two minutes at 150 a minute
    f = write(tmp_path / "talk.txt", body)
    (draft,) = upserts(read([f], settings)).values()
    assert draft.meta["times_estimated"] is True
    assert draft.end_time == pytest.approx(120.0)
    assert draft.meta["format"] == "text"


# --- folders ----------------------------------------------------------------------------------


def test_bad_files_fail_and_the_rest_of_the_folder_is_read(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "lectures"
    write(folder / "a_good.vtt", VTT)
    write(folder / "b_no_header.vtt", "00:00:01.000 --> 00:00:02.000\nHello\n")
    write(folder / "c_backwards.srt", "1\n00:20:00,000 --> 00:20:02,000\nLate.\n\n2\n00:00:01,000 --> 00:00:02,000\nEarly.\n")
    write(folder / "d_empty.srt", "")
    write(folder / "e_wrong_shape.json", json.dumps({"segments": "not a list", "events": 3}))
    write(folder / "f_binary.txt", b"\x00\x01\x02binary")
    write(folder / "z_good.srt", SRT)
    events = read([folder], settings)
    assert set(upserts(events)) == {"transcript:lectures/a_good", "transcript:lectures/z_good"}
    got = fails(events)
    bad = ("b_no_header", "c_backwards", "d_empty", "e_wrong_shape")
    assert set(got) == {f"transcript:lectures/{n}" for n in bad}
    assert got["transcript:lectures/b_no_header"] == "b_no_header.vtt: not a WebVTT file: the first line must be 'WEBVTT'"
    assert "timestamps go backwards" in got["transcript:lectures/c_backwards"]
    assert got["transcript:lectures/d_empty"] == "d_empty.srt: empty file"
    assert "JSON has no transcript segments" in got["transcript:lectures/e_wrong_shape"]
    assert [e.reason for e in events if isinstance(e, Skip)] == ["binary file, not a transcript"]  # f_binary.txt
    for reason in got.values():
        assert "\n" not in reason
    # The scope is still complete: failed files are listed by their Fail (the service keeps them).
    assert events[-1] == ScopeComplete(prefix="transcript:lectures/")


def test_folder_ids_are_relative_paths_and_the_scope_is_complete(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "cs101"
    write(root / "week1" / "lec1.vtt", VTT)
    write(root / "week2" / "lec1.srt", SRT)
    write(root / "week2" / "lec1.yaml", "title: Week two\n")
    write(root / "README.md", "# not a transcript")
    events = read([root], settings)
    drafts = upserts(events)
    assert set(drafts) == {"transcript:cs101/week1/lec1", "transcript:cs101/week2/lec1"}
    assert drafts["transcript:cs101/week2/lec1"].meta["file"] == "week2/lec1.srt"
    assert drafts["transcript:cs101/week2/lec1"].meta["course"] == "week2"
    assert events[-1] == ScopeComplete(prefix="transcript:cs101/")
    assert fails(events) == {} and skips(events) == {}


def test_same_stem_in_several_formats_is_one_lecture(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    write(folder / "lec1.txt", "Plain text version.")
    write(folder / "lec1.json", json.dumps(WHISPER))
    write(folder / "lec1.srt", SRT)
    write(folder / "lec1.vtt", VTT)
    events = read([folder], settings)
    (draft,) = upserts(events).values()
    assert draft.key == "transcript:course/lec1"
    assert draft.meta["format"] == "webvtt"
    assert skips(events) == {f"lec1.{ext}": "duplicate of lec1.vtt" for ext in ("srt", "json", "txt")}
    assert events[-1] == ScopeComplete(prefix="transcript:course/")


def test_without_vtt_srt_beats_json_and_json_beats_txt(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    write(folder / "a.srt", SRT)
    write(folder / "a.json", json.dumps(WHISPER))
    write(folder / "b.txt", "Plain.")
    write(folder / "b.json", json.dumps(WHISPER))
    events = read([folder], settings)
    formats = {k: d.meta["format"] for k, d in upserts(events).items()}
    assert formats == {"transcript:course/a": "srt", "transcript:course/b": "whisper_json"}
    assert skips(events) == {"a.json": "duplicate of a.srt", "b.txt": "duplicate of b.json"}


def test_an_edited_vtt_replaces_the_machine_transcript_under_the_same_key(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    write(folder / "lec1.json", json.dumps(WHISPER))
    (before,) = upserts(read([folder], settings)).values()
    write(folder / "lec1.vtt", VTT)
    (after,) = upserts(read([folder], settings)).values()
    assert before.key == after.key == "transcript:course/lec1"
    assert (before.meta["format"], after.meta["format"]) == ("whisper_json", "webvtt")
    assert before.content_hash() != after.content_hash()


def test_two_files_claiming_one_id_fail_the_second(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "course"
    write(folder / "a.vtt", VTT)
    write(folder / "a.yaml", "id: shared\n")
    write(folder / "b.srt", SRT)
    write(folder / "b.yaml", "id: shared\n")
    events = read([folder], settings)
    assert list(upserts(events)) == ["transcript:shared"]
    assert fails(events) == {"transcript:shared": "b.srt: lecture id 'shared' is already used by a.vtt"}


def test_hidden_files_are_ignored_and_symlinks_not_followed(tmp_path: Path, settings: Settings) -> None:
    outside = write(tmp_path / "outside" / "secret.vtt", VTT)
    folder = tmp_path / "course"
    write(folder / "lec.vtt", VTT)
    write(folder / ".draft.vtt", VTT)
    write(folder / ".cache" / "old.vtt", VTT)
    os.symlink(outside, folder / "linked.vtt")
    os.symlink(outside.parent, folder / "linked_dir")
    events = read([folder], settings)
    assert list(upserts(events)) == ["transcript:course/lec"]
    assert skips(events) == {"linked.vtt": "symbolic link, not followed", "linked_dir": "symbolic link, not followed"}


def test_missing_input_fails(tmp_path: Path, settings: Settings) -> None:
    events = read([tmp_path / "nope"], settings)
    assert [type(e) for e in events] == [Fail]
    assert "no such file or folder" in fails(events)[str(tmp_path / "nope")]


def test_deleted_files_are_removed_by_the_service(tmp_path: Path, settings: Settings, store: Store) -> None:
    folder = tmp_path / "course"
    write(folder / "a.vtt", VTT)
    gone = write(folder / "b.srt", SRT)
    service = IngestService(settings, store, progress=False)
    first = service.run([TranscriptReader([folder], settings)], inputs=[str(folder)])
    assert (first.added, first.failed) == (2, 0)
    gone.unlink()
    second = service.run([TranscriptReader([folder], settings)], inputs=[str(folder)])
    assert (second.unchanged, second.removed) == (1, 1)
    with store.session() as s:
        assert [src.key for src in s.query(Source)] == ["transcript:course/a"]


# --- the demo lectures ------------------------------------------------------------------------


def test_demo_lectures_read_cleanly_within_the_windows(settings: Settings) -> None:
    events = read([DEMO], settings)
    assert fails(events) == {} and skips(events) == {}
    drafts = upserts(events)
    assert len(drafts) == 3
    assert events[-1] == ScopeComplete(prefix="transcript:transcripts/")
    lo, hi = settings.ingest.transcript_window_min_s, settings.ingest.transcript_window_max_s
    formats = set()
    for draft in drafts.values():
        formats.add(draft.meta["format"])
        assert draft.meta["course"] == "Retrieval-augmented generation for course and code QA"
        assert draft.meta["licence"] == "CC-BY-4.0"
        assert draft.authored_at is not None and draft.url and draft.url.startswith("https://example.org/")
        minutes = (draft.end_time - draft.start_time) / 60
        assert 8 <= minutes <= 12, (draft.key, minutes)
        base = [c for c in draft.chunks if "joins" not in c.meta]
        joined = draft.chunks[len(base):]  # the larger scales come after the chunks they join
        assert settings.ingest.transcript_scales == 3
        assert all("joins" in c.meta for c in joined) and len(joined) == (len(base) - 1) + (len(base) - 2)
        for w in joined:
            first, last = w.meta["joins"]
            assert (w.start_time, w.end_time) == (base[first].start_time, base[last].end_time)
        words = sum(len(c.text.split()) for c in base)
        assert 1200 <= words <= 1900, (draft.key, words)
        assert words / (draft.end_time - draft.start_time) == pytest.approx(2.5, abs=0.4)
        for c in base:
            assert c.end_time - c.start_time <= hi
        for c in base[:-1]:
            assert c.end_time - c.start_time >= lo
        for a, b in itertools.pairwise(base):
            assert a.end_time <= b.start_time
        # The readable text has a time marker at each chunk start (the joined windows add none).
        assert len(re.findall(r"^\[\d\d:\d\d\] ", draft.text, flags=re.M)) == len(base)
    assert formats == {"srt", "webvtt", "whisper_json"}
    two = [d for d in drafts.values() if len(d.meta["speakers"]) == 2]
    assert len(two) == 1 and two[0].meta["speakers"] == ["Dr. Rosa Lindqvist", "Omar"]
    assert any("Omar: " in c.text for c in two[0].chunks)
    # The Whisper file's diarisation label is mapped to the lecturer's name by its sidecar.
    whisper = next(d for d in drafts.values() if d.meta["format"] == "whisper_json")
    assert whisper.meta["speakers"] == ["Dr. Rosa Lindqvist"]
    assert (DEMO / "LICENSE.md").read_text().count("CC-BY-4.0") >= 1


def test_one_scale_setting_indexes_only_the_chunks(tmp_path: Path, settings: Settings) -> None:
    one = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"transcript_scales": 1})})
    three = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"transcript_scales": 3})})
    (d1,) = [d for d in upserts(read([DEMO], one)).values() if d.meta["format"] == "srt"]
    (d3,) = [d for d in upserts(read([DEMO], three)).values() if d.meta["format"] == "srt"]
    n = len(d1.chunks)
    assert all("joins" not in c.meta for c in d1.chunks)
    assert [c.meta.get("scale", 1) for c in d3.chunks] == [1] * n + [2] * (n - 1) + [3] * (n - 2)
    assert d3.text == d1.text  # the readable text is the chunks', once


def test_a_transcript_over_the_size_limit_is_skipped_with_the_setting_named(tmp_path: Path) -> None:
    from lorebase.settings import load_settings

    settings = load_settings(home=tmp_path / "home", ingest={"max_transcript_bytes": 1000})
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "short.srt").write_text(SRT)
    big = "A line of a very long lecture that goes on and on.\n" * 40  # about 2 KB
    (folder / "long.txt").write_text(big)
    (folder / "huge.json").write_text(json.dumps({"segments": [{"start": 0, "end": 1, "text": "x" * 2000}]}))
    events = read([folder], settings)
    skips = {e.ref: e.reason for e in events if isinstance(e, Skip)}
    assert set(skips) == {"long.txt", "huge.json"}
    assert all("ingest.max_transcript_bytes" in r and "> 1000 bytes" in r for r in skips.values())
    assert [e.draft.key for e in events if isinstance(e, Upsert)] == ["transcript:course/short"]
    assert read([folder / "long.txt"], settings)[0] == Skip("long.txt", skips["long.txt"])  # a single file too


def test_an_oversized_sidecar_fails_its_lecture_instead_of_being_parsed(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "talk.srt").write_text(SRT)
    (tmp_path / "talk.yaml").write_text("title: x\n" + "# padding\n" * 120_000)
    [event] = read([tmp_path / "talk.srt"], settings)
    assert isinstance(event, Fail) and "larger than" in event.reason and "talk.yaml" in event.reason


def test_binary_noise_without_a_nul_is_skipped_not_read_as_latin1(tmp_path: Path, settings: Settings) -> None:
    import random

    rng = random.Random(5)
    noise = bytes(rng.choice([b for b in range(1, 256)]) for _ in range(20_000))  # no NUL anywhere
    folder = tmp_path / "lectures"
    write(folder / "noise.txt", noise)
    write(folder / "header_then_noise.srt", SRT.encode() + noise)  # a real header, then noise
    write(folder / "good.srt", SRT)
    write(folder / "latin1.txt", "Le cours d\u2019aujourd\u2019hui : caf\xe9, na\x81ve.\n".encode("latin-1", "replace") * 50)
    events = read([folder], settings)
    skips = {e.ref: e.reason for e in events if isinstance(e, Skip)}
    assert set(skips) == {"noise.txt", "header_then_noise.srt"}, skips
    assert all(r.startswith("binary content:") and "control characters" in r for r in skips.values())
    assert set(upserts(events)) == {"transcript:lectures/good", "transcript:lectures/latin1"}
