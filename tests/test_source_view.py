"""The source viewer's data, read from a real store filled by real ingest of a git repository and
a meeting transcript: cited lines with context, a commit's diff, a transcript span, and nothing
reachable but sources by their ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase.citations import cite
from lorebase.errors import InvalidInput, NotFound
from lorebase.settings import Settings
from lorebase.source_view import SourceViewer, parse_lines, parse_times, viewer_path
from lorebase.store import Store
from lorebase.store.models import Chunk, Source
from tests.ui.corpus import MEETING, RECORDING, REMOTE, RETRY_V2, ingest, make_meetings, make_repo


@pytest.fixture
def corpus(settings: Settings, tmp_path: Path) -> Store:
    ingest(settings, [make_repo(tmp_path), make_meetings(tmp_path)])
    return Store(settings.db_url)


def _source(store: Store, **where: object) -> Source:
    with store.session() as s:
        q = select(Source)
        for k, v in where.items():
            q = q.where(getattr(Source, k) == v)
        src = s.scalars(q).one()
        _ = src.chunks
        return src


def test_a_file_shows_the_cited_lines_highlighted_with_context_and_the_github_lines(corpus: Store) -> None:
    src = _source(corpus, path="jobs/retry.py")
    lines = RETRY_V2.split("\n")
    target = next(i for i, ln in enumerate(lines, start=1) if "def retry_delay" in ln)
    view = SourceViewer(corpus).view(src.id, lines=(target, target + 2), context=3)
    assert [ln.number for ln in view.lines] == list(range(target - 3, target + 6))
    assert [ln.number for ln in view.lines if ln.cited] == [target, target + 1, target + 2]
    assert view.lines[3].text == lines[target - 1]  # the text at its number, exactly
    assert view.label == f"jobs/retry.py:{target}-{target + 2}@{src.commit[:7]}"
    base = REMOTE.removesuffix(".git").replace("https://github.com/", "")
    assert view.web_url == f"https://github.com/{base}/blob/{src.commit}/jobs/retry.py#L{target}-L{target + 2}"
    whole = SourceViewer(corpus).view(src.id, lines=(target, target), context=None)
    assert len(whole.lines) == whole.total_lines == len(lines) - 1  # the file ends with a newline

    older = SourceViewer(corpus).view(src.id, lines=(1, 2), commit="0123456789abcdef")
    assert older.notes and "0123456" in older.notes[0]  # cited at another commit: said plainly
    with pytest.raises(InvalidInput, match="has"):
        SourceViewer(corpus).view(src.id, lines=(999, 1000))


def test_a_commit_shows_its_message_and_diff(corpus: Store) -> None:
    src = _source(corpus, kind="commit", title="Double the retry delay for each later retry")
    view = SourceViewer(corpus).view(src.id)
    assert "Agreed in meeting IS1001a." in view.header and "Author: Ada" in view.header
    kinds = {d.kind for d in view.diff}
    assert {"meta", "hunk", "add", "del"} <= kinds
    assert any(d.kind == "add" and "2 ** (attempt - 1)" in d.text for d in view.diff)
    assert any(d.kind == "del" and "the same each time" in d.text for d in view.diff)


def test_a_transcript_highlights_the_cited_span_with_the_moment_on_the_recording(corpus: Store) -> None:
    src = _source(corpus, kind="transcript")
    cited_chunk = next(c for c in src.chunks if "thirty seconds" in c.text)
    t0, t1 = cited_chunk.start_time, cited_chunk.end_time
    assert t0 is not None and t1 is not None
    view = SourceViewer(corpus).view(src.id, times=(t0, t1))
    assert view.label == f"{MEETING} @ {int(t0) // 60:02d}:{int(t0) % 60:02d}"
    marked = [seg for seg in view.segments if seg.cited]
    assert len(marked) == 1 and "thirty seconds" in marked[0].text
    assert any(not seg.cited for seg in view.segments)  # context around it
    assert view.media_url == f"{RECORDING}#t={int(t0)}" and view.local_media is None
    with pytest.raises(InvalidInput, match="no speech"):
        SourceViewer(corpus).view(src.id, times=(9000.0, 9001.0))


def test_passages_are_the_whole_cited_chunk(corpus: Store) -> None:
    src = _source(corpus, kind="transcript")
    with corpus.session() as s:
        chunk = s.scalars(select(Chunk).where(Chunk.source_id == src.id).order_by(Chunk.ordinal.desc())).first()
        c = cite(s.get(Source, src.id), chunk, "S1", snippet_chars=20)
    assert c.snippet.endswith("…") and SourceViewer(corpus).passage(c) == chunk.text


def test_only_sources_by_id_can_be_reached(corpus: Store) -> None:
    viewer = SourceViewer(corpus)
    for bad in ("../../etc/passwd", "src_../x", "/etc/passwd", "src_", "src_ZZ"):
        with pytest.raises(NotFound):
            viewer.view(bad)
    with pytest.raises(NotFound, match="no recording"):
        viewer.recording(_source(corpus, kind="transcript").id)  # a web recording is not served from here


def test_spans_are_parsed_strictly_and_citations_link_to_their_place() -> None:
    assert parse_lines("10-42") == (10, 42) and parse_lines("7") == (7, 7) and parse_lines(None) is None
    assert parse_times("70-85.5") == (70.0, 85.5)
    for bad in ("0-3", "9-2", "1;rm", "a-b"):
        with pytest.raises(InvalidInput):
            parse_lines(bad)
    with pytest.raises(InvalidInput):
        parse_times("80-70")
    from lorebase.citations import Citation

    code = Citation(id="S2", source_id="src_ab", kind="code", title="m.py", path="m.py", start_line=3, end_line=9,
                    commit="abc1234")
    assert viewer_path(code) == "/sources/src_ab?lines=3-9&commit=abc1234&cite=S2#L3"
    talk = Citation(id="S1", source_id="src_cd", kind="transcript", title="IS1001a", start_time=70.0, end_time=95.5)
    assert viewer_path(talk) == "/sources/src_cd?t=70-95.5&cite=S1#cited"
