from lorebase.citations import cite, format_timestamp
from lorebase.store.models import Chunk, Source


def _source(**kw: object) -> Source:
    base = dict(id="src_x", key="k", kind="code", title="t", text="x" * 1000, content_hash="h", meta={})
    base.update(kw)
    return Source(**base)


def test_code_citation_links_to_the_lines_at_the_commit() -> None:
    sha = "a" * 40
    src = _source(kind="code", repo="o/r", path="src/m.py", commit=sha, title="src/m.py",
                  url=f"https://github.com/o/r/blob/{sha}/src/m.py")
    ch = Chunk(text="def f():\n    return 1\n", start_line=10, end_line=42)
    c = cite(src, ch, "S1", score=0.81)
    assert c.uri == f"https://github.com/o/r/blob/{sha}/src/m.py#L10-L42"
    assert (c.start_line, c.end_line, c.commit, c.repo, c.path) == (10, 42, sha, "o/r", "src/m.py")
    assert c.label == "src/m.py:10-42@aaaaaaa"
    assert set(c.model_dump()) == {"id", "source_id", "kind", "title", "uri", "repo", "path", "start_line", "end_line",
                                   "commit", "number", "start_time", "end_time", "snippet", "score"}


def test_transcript_citation_carries_time() -> None:
    src = _source(kind="transcript", title="Lecture 2", lecture="Lecture 2", url="https://example.org/l2.mp4")
    ch = Chunk(text="We now define recall.", start_time=185.4, end_time=240.0)
    c = cite(src, ch, "S2")
    assert c.uri == "https://example.org/l2.mp4#t=185"
    assert c.label == "Lecture 2 @ 03:05"
    assert c.start_time == 185.4 and c.end_time == 240.0


def test_issue_and_local_sources() -> None:
    issue = _source(kind="issue", number=12, url="https://github.com/o/r/issues/12", title="#12 crash")
    assert cite(issue, None, "S1").label == "#12"
    local = _source(kind="code", path="m.py", commit=None, url=None)
    c = cite(local, Chunk(text="x", start_line=3, end_line=4), "S1")
    assert c.uri == "lorebase://source/src_x#L3-L4"


def test_snippet_is_bounded() -> None:
    c = cite(_source(), None, "S1", snippet_chars=50)
    assert len(c.snippet) == 50 and c.snippet.endswith("…")


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "00:00"
    assert format_timestamp(59.9) == "00:59"
    assert format_timestamp(3600 + 61) == "1:01:01"
