"""Recordings end to end: real speech (espeak-ng), real containers (ffmpeg), the real Whisper base
model, the real ingest service and store. Tests that run Whisper are marked slow."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase import offline_models
from lorebase.citations import cite
from lorebase.errors import InvalidInput
from lorebase.eval.wer import word_error_rate, words
from lorebase.ingest.records import Fail, ReadContext, Skip, Upsert
from lorebase.ingest.resolve import reader_for
from lorebase.ingest.service import IngestService
from lorebase.ingest.transcripts.reader import TranscriptReader
from lorebase.ingest.transcripts.recordings import Checkpoint, SpeechSegment, Transcriber, checkpoint_path, read_cached
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import Chunk, Source, source_id_for
from tests.ingest.transcripts.recording_media import (
    HASH_TABLES,
    CountingModel,
    need_tools,
    room_tone,
    speak,
    video_without_audio,
    wav_with_unknown_codec,
    wrap_video,
)

SR = 16_000
WER_BOUND = 0.25


@pytest.fixture(scope="session")
def whisper_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return offline_models.assemble_whisper(tmp_path_factory.mktemp("models") / "whisper-base")


@pytest.fixture(scope="module")
def whisper_model(whisper_folder: Path) -> object:
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_folder), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1)


@pytest.fixture(scope="module")
def hash_tables_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float, str]]]:
    need_tools()
    out = tmp_path_factory.mktemp("speech") / "hash-tables.wav"
    return out, speak(HASH_TABLES, out)


def make_settings(tmp_path: Path, whisper_folder: Path, **transcribe: object) -> Settings:
    s = load_settings(
        home=tmp_path / "home",
        models={"whisper": str(whisper_folder)},
        ingest={"transcript_window_min_s": 3.0, "transcript_window_max_s": 6.0},
        transcribe=transcribe,
    )
    s.ensure_home()
    return s


def no_store_ctx() -> ReadContext:
    return ReadContext(cursor=lambda _: None, known_hash=lambda _: None)


def source(store: Store, key: str) -> Source:
    with store.session() as s:
        src = s.get(Source, source_id_for(key))
        assert src is not None, key
        s.expunge(src)
        return src


def chunks_of(store: Store, key: str) -> list[Chunk]:
    """The passages of a source, each once: joined windows (wider scales over the same words) left out."""
    with store.session() as s:
        rows = list(s.scalars(select(Chunk).where(Chunk.source_id == source_id_for(key)).order_by(Chunk.ordinal)))
        for c in rows:
            s.expunge(c)
        return [c for c in rows if c.joins is None]


# --- the model ----------------------------------------------------------------------------------


def test_models_prepare_assembles_whisper_in_the_data_home(settings: Settings) -> None:
    infos = {i.role: i for i in offline_models.available(settings)}
    assert not infos["whisper"].ready and "lorebase models prepare" in infos["whisper"].detail

    lines: list[str] = []
    offline_models.prepare_whisper(settings, log=lines.append)
    folder = offline_models.whisper_path(settings)
    assert folder == settings.models_dir / "whisper-base"
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert all((folder / f).is_file() for f in ("config.json", "tokenizer.json", "vocabulary.txt"))
    assert not folder.with_name("whisper-base.partial").exists()
    assert {i.role: i for i in offline_models.available(settings)}["whisper"].ready

    lines.clear()
    offline_models.prepare_whisper(settings, log=lines.append)
    assert any("already prepared" in line for line in lines)

    # a damaged model (cut short) is not taken for ready, and prepare joins it again
    with open(folder / "model.bin", "r+b") as f:
        f.truncate(1000)
    assert not {i.role: i for i in offline_models.available(settings)}["whisper"].ready
    offline_models.prepare_whisper(settings, log=lines.append)
    assert (folder / "model.bin").stat().st_size == 145_217_532


def test_any_ctranslate2_folder_replaces_the_builtin(tmp_path: Path, whisper_folder: Path) -> None:
    s = load_settings(home=tmp_path / "h", models={"whisper": str(whisper_folder)})
    assert offline_models.whisper_path(s) == whisper_folder
    bad = load_settings(home=tmp_path / "h", models={"whisper": str(tmp_path)})
    with pytest.raises(offline_models.ModelNotAvailable, match="LOREBASE_MODELS__WHISPER"):
        offline_models.whisper_path(bad)


# --- lectures in three containers, retrieved by time, never transcribed twice -------------------


@pytest.mark.slow
def test_recordings_in_wav_mp4_and_webm_are_transcribed_ingested_and_cited_by_time(
    tmp_path: Path, whisper_folder: Path, whisper_model: object, hash_tables_wav: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, heard = hash_tables_wav
    course = tmp_path / "course"
    course.mkdir()
    (course / "lec1.wav").write_bytes(wav.read_bytes())
    (course / "lec1.json").write_text(json.dumps({"title": "Hash tables", "date": "2024-03-05"}))  # a sidecar
    wrap_video(wav, course / "lec2.mp4")
    wrap_video(wav, course / "lec3.webm")
    settings = make_settings(tmp_path, whisper_folder)
    store = Store(settings.db_url)
    model = CountingModel(whisper_model)

    def ingest() -> object:
        reader = TranscriptReader([course], settings, transcriber=Transcriber(settings, model=model))
        return IngestService(settings, store).run([reader], inputs=[str(course)])

    report = ingest()
    assert report.failed == 0 and report.added == 3, report.errors
    assert len(model.calls) == 3  # one window each
    truth = " ".join(HASH_TABLES)
    for name in ("lec1", "lec2", "lec3"):
        key = f"transcript:course/{name}"
        src = source(store, key)
        assert word_error_rate(truth, " ".join(c.text for c in chunks_of(store, key))) < WER_BOUND
        recording = course / (name + {"lec1": ".wav", "lec2": ".mp4", "lec3": ".webm"}[name])
        assert src.url == recording.resolve().as_uri()
        assert src.meta["origin"] == "whisper" and src.meta["language"] == "en"
        assert src.meta["recording"] == str(recording.resolve())
        assert abs(src.meta["duration"] - heard[-1][1]) < 0.5
        assert src.meta["model"] == str(whisper_folder) and src.meta["compute_type"] == "int8"
        assert len(src.meta["media_hash"]) == 64
        export = settings.home / "transcripts" / "course" / name
        assert {p.suffix for p in export.parent.glob(name + ".*")} == {".vtt", ".srt", ".yaml"}
    assert source(store, "transcript:course/lec1").title == "Hash tables"
    assert source(store, "transcript:course/lec1").authored_at.date().isoformat() == "2024-03-05"

    # The chunk whose time range holds the moment a sentence was spoken holds that sentence.
    start, end, sentence = heard[2]
    moment = (start + end) / 2
    key = "transcript:course/lec2"
    chunks = chunks_of(store, key)
    assert len(chunks) >= 2
    (hit,) = [c for c in chunks if c.start_time <= moment <= c.end_time]
    said = set(words(sentence))
    assert len(said & set(words(hit.text))) >= 0.6 * len(said)
    others = [c for c in chunks if c is not hit]
    assert all(len(said & set(words(c.text))) < 0.6 * len(said) for c in others)
    citation = cite(source(store, key), hit, "S1")
    assert citation.uri == f"{(course / 'lec2.mp4').resolve().as_uri()}#t={int(hit.start_time)}"
    assert citation.label.endswith(f"@ 00:{int(hit.start_time):02d}")

    if importlib.util.find_spec("lorebase.index.search") is not None:  # the retrieval floor, where present
        from lorebase.index.search import SearchService

        top = SearchService(settings, store).search("collisions resolved by chaining", k=3, mode="bm25",
                                                    filters=None)
        assert any(c.start_time is not None and c.start_time <= moment <= c.end_time for c in top)

    # Unchanged recordings: nothing transcribed, nothing touched.
    again = ingest()
    assert len(model.calls) == 3
    assert again.unchanged == 3 and again.added == again.updated == again.failed == 0


# --- bad input ----------------------------------------------------------------------------------


def test_silent_audioless_corrupt_and_undecodable_recordings_are_reported_and_the_batch_goes_on(
    tmp_path: Path, whisper_folder: Path
) -> None:
    need_tools()
    course = tmp_path / "course"
    course.mkdir()
    room_tone(course / "quiet.wav")
    video_without_audio(course / "slides.mp4")
    (course / "broken.mp3").write_bytes(random.Random(3).randbytes(40_000))
    wav_with_unknown_codec(course / "odd.wav")
    (course / "notes.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nA text transcript beside them.\n")
    settings = make_settings(tmp_path, whisper_folder)
    store = Store(settings.db_url)

    report = IngestService(settings, store).run([TranscriptReader([course], settings)], inputs=[str(course)])

    assert report.added == 1 and source(store, "transcript:course/notes").text.endswith("A text transcript beside them.")
    reasons = {e["source"]: e["reason"] for e in report.errors}
    assert reasons == {
        "transcript:course/slides": "slides.mp4: no audio track",
        "transcript:course/broken": reasons["transcript:course/broken"],
        "transcript:course/odd": "odd.wav: unsupported audio codec: no decoder for it in this FFmpeg build",
    }
    assert reasons["transcript:course/broken"].startswith("broken.mp3: not a readable audio or video file (")
    assert all("\n" not in r and str(tmp_path) not in r for r in reasons.values())
    assert {s["source"]: s["reason"] for s in report.skips} == {"quiet.wav": "no speech found in the recording (00:06 of audio)"}

    # the silent recording is settled: a second read finds it in the cache and skips it again
    cached = read_cached(settings, _hash(course / "quiet.wav"))
    assert cached is not None and cached.segments == [] and abs(cached.duration - 6.0) < 0.01


def _hash(path: Path) -> str:
    from lorebase.ingest.transcripts.media import media_hash

    return media_hash(path)


# --- long recordings: windows, checkpoints, resume ----------------------------------------------


@pytest.mark.slow
def test_interrupted_transcription_resumes_at_the_checkpoint_without_repeating(
    tmp_path: Path, whisper_folder: Path, whisper_model: object, hash_tables_wav: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, _ = hash_tables_wav
    settings = make_settings(tmp_path, whisper_folder)

    class Interrupted(Exception):
        pass

    seen: list[SpeechSegment] = []

    def stop_after_two(seg: SpeechSegment) -> None:
        seen.append(seg)
        if len(seen) == 2:
            raise Interrupted

    first = CountingModel(whisper_model)
    with pytest.raises(Interrupted):
        Transcriber(settings, model=first, on_segment=stop_after_two).transcribe(wav)
    digest = _hash(wav)
    assert read_cached(settings, digest) is None  # not finished
    path = checkpoint_path(settings, digest)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["segment"]["text"] for r in records if "segment" in r] == [s.text for s in seen]
    checkpoint_end = seen[-1].end
    with open(path, "a") as f:
        f.write('{"segment": {"start": 99, "end"')  # a record torn by the kill

    second = CountingModel(whisper_model)
    result = Transcriber(settings, model=second).transcribe(wav)

    # decoding restarted at the checkpoint: the first window holds only the audio after it
    after_checkpoint = (result.duration - checkpoint_end) * SR
    assert abs(second.calls[0] - after_checkpoint) <= 0.002 * SR  # durations are kept to the millisecond
    assert result.segments[:2] == seen
    texts = [s.text for s in result.segments]
    assert len(texts) == len(set(texts))
    assert all(a.end <= b.start for a, b in zip(result.segments, result.segments[1:], strict=False))
    assert word_error_rate(" ".join(HASH_TABLES), " ".join(texts)) < WER_BOUND
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines) and json.loads(lines[-1])["done"]["segments"] == len(texts)
    # finished: cached from now on
    third = CountingModel(whisper_model)
    assert Transcriber(settings, model=third).transcribe(wav).segments == result.segments and third.calls == []


@pytest.mark.slow
def test_a_recording_longer_than_the_window_is_stitched_without_gaps_or_repeats(
    tmp_path: Path, whisper_folder: Path, whisper_model: object, hash_tables_wav: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, heard = hash_tables_wav
    settings = make_settings(tmp_path, whisper_folder)
    model = CountingModel(whisper_model)
    result = Transcriber(settings, model=model, window_s=6.0).transcribe(wav)
    assert len(model.calls) >= 2 and max(model.calls) <= 6 * SR  # never more than a window at once
    texts = [s.text for s in result.segments]
    assert all(a.end <= b.start for a, b in zip(result.segments, result.segments[1:], strict=False))
    assert word_error_rate(" ".join(HASH_TABLES), " ".join(texts)) < WER_BOUND
    assert abs(result.duration - heard[-1][1]) < 0.05


def test_audio_is_held_one_window_at_a_time(tmp_path: Path) -> None:
    """A 10-minute recording read in 60 s windows: memory holds about one window, not the file."""
    from lorebase.ingest.transcripts.media import AudioStream

    path = room_tone(tmp_path / "long.wav", seconds=600.0)
    window = 60 * SR
    total = 0
    with AudioStream(path) as audio:
        pos = 0
        while not audio.at_end(pos):
            chunk = audio.read(pos, window)
            total += chunk.size
            pos += window
        assert audio.peak_held <= window + SR  # one window and at most a second of decoded frames
    assert total == 600 * SR


# --- corrections --------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_edited_vtt_export_supersedes_the_recording_and_keeps_its_identity(
    tmp_path: Path, whisper_folder: Path, whisper_model: object, hash_tables_wav: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, _ = hash_tables_wav
    course = tmp_path / "course"
    course.mkdir()
    (course / "lec1.wav").write_bytes(wav.read_bytes())
    settings = make_settings(tmp_path, whisper_folder)
    store = Store(settings.db_url)
    model = CountingModel(whisper_model)
    service = IngestService(settings, store)

    def ingest(path: Path) -> object:
        return service.run([TranscriptReader([path], settings, transcriber=Transcriber(settings, model=model))],
                           inputs=[str(path)])

    assert ingest(course).added == 1
    key = "transcript:course/lec1"
    machine = source(store, key)
    export = settings.home / "transcripts" / "course" / "lec1.vtt"
    edited = export.read_text().replace("Today we talk about", "Today we finally discuss")
    assert edited != export.read_text()

    # 1. the edited VTT placed beside the recording wins, under the same key, still citing the recording
    (course / "lec1.vtt").write_text(edited)
    report = ingest(course)
    assert report.updated == 1 and report.removed == 0
    assert {s["source"]: s["reason"] for s in report.skips} == {"lec1.wav": "transcript lec1.vtt supersedes the recording"}
    corrected = source(store, key)
    assert corrected.id == machine.id and "Today we finally discuss" in corrected.text
    assert corrected.url == (course / "lec1.wav").resolve().as_uri() and corrected.meta["format"] == "webvtt"
    assert len(model.calls) == 1  # the recording was not transcribed again

    # 2. the export itself, ingested from the data home, maps to the same lecture through its sidecar id
    (course / "lec1.vtt").unlink()
    export.write_text(edited.replace("finally discuss", "briefly discuss"))
    report = IngestService(settings, store).run([TranscriptReader([export], settings)], inputs=[str(export)])
    assert report.updated == 1 and report.added == 0
    assert "Today we briefly discuss" in source(store, key).text
    assert source(store, key).url == (course / "lec1.wav").resolve().as_uri()

    # a cache hit never overwrites the person's corrections in the export
    ingest(course)
    assert "briefly discuss" in export.read_text()


def test_untouched_export_reads_back_to_the_same_chunks(tmp_path: Path) -> None:
    from lorebase.ingest.transcripts.chunks import chunk_segments
    from lorebase.ingest.transcripts.export import to_srt, to_webvtt
    from lorebase.ingest.transcripts.formats import parse_transcript
    from lorebase.ingest.transcripts.segments import Segment

    segments = [Segment(0.0, 1.76, "Today we talk about hash tables."), Segment(2.34, 4.765, "A hash function maps keys."),
                Segment(3723.5, 3725.0, "An hour later, still talking.")]
    for text, suffix in ((to_webvtt(segments), ".vtt"), (to_srt(segments), ".srt")):
        back = parse_transcript(text, suffix).segments
        assert [(s.start, s.end, s.text) for s in back] == [(s.start, s.end, s.text) for s in segments]
        assert chunk_segments(back, min_s=3, max_s=6) == chunk_segments(segments, min_s=3, max_s=6)


def test_a_lecture_id_cannot_write_outside_the_transcripts_folder(tmp_path: Path) -> None:
    from lorebase.ingest.transcripts.export import export_base

    assert export_base(tmp_path, "course/lec1") == tmp_path / "course" / "lec1"
    for bad in ("../escape", "course/../../x", "", "/", ".hidden/x"):
        with pytest.raises(InvalidInput):
            export_base(tmp_path, bad)


# --- URLs -----------------------------------------------------------------------------------------


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_recording_by_url_is_fetched_into_the_data_home_and_cites_the_url(
    tmp_path: Path, whisper_folder: Path, http_folder: tuple[Path, str],
    hash_tables_wav: tuple[Path, list[tuple[float, float, str]]],
) -> None:
    wav, _ = hash_tables_wav
    root, base = http_folder
    (root / "cs101").mkdir()
    (root / "cs101" / "lec1.wav").write_bytes(wav.read_bytes())
    url = f"{base}/cs101/lec1.wav"
    settings = make_settings(tmp_path, whisper_folder)
    store = Store(settings.db_url)

    report = IngestService(settings, store).ingest([url, f"{base}/cs101/missing.mp3", "http://127.0.0.1:9/x/y.mp4"])
    assert report.added == 1
    src = source(store, "transcript:cs101/lec1")
    assert src.url == url and src.meta["recording"] == url
    assert word_error_rate(" ".join(HASH_TABLES), src.text) < WER_BOUND
    assert list((settings.home / "downloads").glob("*/lec1.wav"))
    reasons = {e["source"]: e["reason"] for e in report.errors}
    assert reasons["transcript:cs101/missing"] == f"{base}/cs101/missing.mp3: cannot download: HTTP 404 File not found"
    assert reasons["transcript:x/y"].startswith("http://127.0.0.1:9/x/y.mp4: cannot download: ")
    assert reasons["transcript:x/y"].endswith("(is the host reachable from here?)")

    # unchanged on the server: answered 304, nothing transcribed, the source unchanged
    assert IngestService(settings, store).ingest([url]).unchanged == 1

    small = make_settings(tmp_path / "small", whisper_folder, max_download_bytes=10_000)
    events = list(reader_for(url, small).read(no_store_ctx()))
    assert isinstance(events[0], Fail) and "max_download_bytes" in events[0].reason


def test_downloads_follow_only_http_redirects_and_stop_at_the_size_cap(tmp_path: Path, settings: Settings) -> None:
    from lorebase.errors import UpstreamError
    from lorebase.ingest.transcripts.media_download import fetch_recording

    body = b"RIFF" + b"\x00" * 50_000

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/evil"):
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd" if "file" in self.path else "ftp://127.0.0.1/x.mp3")
                self.end_headers()
                return
            self.send_response(200)
            if self.path.startswith("/sized"):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)  # /unsized: no length, cut by counting

        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client hanging up on an oversized body is the point of the test

    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    small = load_settings(home=tmp_path / "h", transcribe={"max_download_bytes": 10_000})
    try:
        with pytest.raises(InvalidInput, match="only http and https"):
            fetch_recording(f"{base}/evil/x.mp3", settings)
        with pytest.raises(UpstreamError, match="not allowed"):  # urllib itself refuses file://
            fetch_recording(f"{base}/evil/file.mp3", settings)
        with pytest.raises(InvalidInput, match="50,004 bytes is more than transcribe.max_download_bytes"):
            fetch_recording(f"{base}/sized/x.wav", small)
        with pytest.raises(InvalidInput, match="more than transcribe.max_download_bytes"):
            fetch_recording(f"{base}/unsized/x.wav", small)
        assert not list((tmp_path / "h").rglob("*.wav*"))  # nothing half-written is left
        assert fetch_recording(f"{base}/sized/x.wav", settings).read_bytes() == body
        with pytest.raises(InvalidInput, match="only http and https"):
            fetch_recording("ftp://127.0.0.1/x.mp3", settings)
        with pytest.raises(UpstreamError, match="reachable"):
            fetch_recording("http://127.0.0.1:9/a.mp3", settings)
    finally:
        server.shutdown()
        server.server_close()


def test_media_files_and_urls_go_to_the_transcript_reader(tmp_path: Path, settings: Settings) -> None:
    need_tools()
    rec = room_tone(tmp_path / "talk.wav")
    assert isinstance(reader_for(str(rec), settings), TranscriptReader)
    url_reader = reader_for("https://media.example.org/cs101/2024-03-05_intro.mp4", settings)
    assert isinstance(url_reader, TranscriptReader) and url_reader.urls == ["https://media.example.org/cs101/2024-03-05_intro.mp4"]
    (tmp_path / "slides.pdf").write_bytes(b"%PDF")
    with pytest.raises(InvalidInput, match="a recording"):
        reader_for(str(tmp_path / "slides.pdf"), settings)


def test_an_unprepared_speech_model_is_prepared_on_first_use(
    tmp_path: Path, settings: Settings, hash_tables_wav: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    # A fresh data home: the recording is transcribed (Whisper is assembled from its packages first),
    # where it used to fail with "run `lorebase models prepare`".
    wav, _ = hash_tables_wav
    (event,) = [e for e in TranscriptReader([wav], settings).read(no_store_ctx()) if not isinstance(e, Skip)]
    assert isinstance(event, Upsert) and event.draft.key == "transcript:hash-tables" and event.draft.chunks


def test_a_checkpoint_is_locked_while_one_process_transcribes(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "ck.jsonl"
    held = Checkpoint.open(path, {"version": 1})
    try:
        with pytest.raises(InvalidInput, match="another lorebase process"):
            Checkpoint.open(path, {"version": 1})
    finally:
        held.close()
    Checkpoint.open(path, {"version": 1}).close()


def test_a_single_recording_is_read_as_one_lecture(tmp_path: Path, whisper_folder: Path) -> None:
    """Events for single files: silence is a Skip, a bad file a Fail carrying the lecture key."""
    need_tools()
    settings = make_settings(tmp_path, whisper_folder)
    quiet = room_tone(tmp_path / "quiet.wav")
    events = list(TranscriptReader([quiet, tmp_path / "gone.mp3"], settings).read(no_store_ctx()))
    assert isinstance(events[0], Skip) and events[0].reason.startswith("no speech found")
    assert isinstance(events[1], Fail) and "no such file" in events[1].reason
    assert not any(isinstance(e, Upsert) for e in events)
