"""GET /sources/{id} (the page citations link to) and GET /v1/sources/{id} (its JSON twin) over a
real ingested repository and meeting: the cited lines and span are marked, everything is escaped,
the API keys guard both, and a recording on this machine is served with ranges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from lorebase.api import errors
from lorebase.api.routes import sources as source_routes
from lorebase.api.security import KeyCheck
from lorebase.feedback.service import FeedbackService
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import Source
from lorebase.ui import source_page
from tests.ui.corpus import MEETING, RECORDING, ingest, make_meetings, make_repo

KEY = "sk-sources-5d1e"


def _client(settings: Settings, store: Store) -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(source_page.router)
    app.include_router(source_routes.router, dependencies=[Depends(KeyCheck(settings.server))])
    app.state.services = Services(settings, store, None, None, None, FeedbackService(store))  # type: ignore[arg-type]
    return TestClient(app)


def _ids(store: Store) -> dict[str, str]:
    with store.session() as s:
        return {src.path or src.kind: src.id for src in s.scalars(select(Source))}


@pytest.fixture
def corpus(settings: Settings, tmp_path: Path) -> Store:
    ingest(settings, [make_repo(tmp_path), make_meetings(tmp_path)])
    return Store(settings.db_url)


def test_the_page_marks_the_cited_lines_and_links_github(settings: Settings, corpus: Store) -> None:
    client = _client(settings, corpus)
    sid = _ids(corpus)["jobs/retry.py"]
    r = client.get(f"/sources/{sid}", params={"lines": "3-4", "cite": "S2"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    marked = re.findall(r'<tr id="L(\d+)" class=hl>', html)
    assert marked == ["3", "4"]
    assert '<tr id="L5">' in html and "Lines 3–4 cited (highlighted)" in html
    assert re.search(r'href="https://github.com/lorebase-demo/jobs/blob/[0-9a-f]{40}/jobs/retry.py#L3-L4"', html)
    assert "Cited as <b>S2</b>" in html and "show the whole file" in html
    assert "<script" not in html  # a file page needs no script
    assert 'src="http' not in html and "<link" not in html  # nothing loads from elsewhere


def test_the_transcript_page_marks_the_span_and_links_each_moment_of_the_recording(settings: Settings, corpus: Store) -> None:
    client = _client(settings, corpus)
    sid = _ids(corpus)["transcript"]
    data = client.get(f"/v1/sources/{sid}").json()
    cited = next(seg for seg in data["segments"] if "thirty seconds" in seg["text"])
    html = client.get(f"/sources/{sid}", params={"t": f"{cited['start']}-{cited['end']}"}).text
    [hl] = re.findall(r'<div class="seg hl" id="cited">.*?</div>', html)
    assert "thirty seconds" in hl and f'href="{RECORDING}#t={int(cited["start"])}"' in hl
    assert html.count('class="seg"') >= 2  # context around the span
    assert f"{MEETING} @ " in html and "Play the recording from" in html


def test_ingested_text_is_escaped(settings: Settings, store: Store) -> None:
    with store.session() as s:
        s.add(Source(id="src_00ff", key="issue:o/r#9", kind="issue", title="#9 <script>alert(1)</script>", number=9,
                     repo="o/r", content_hash="h", text="#9 <img src=x onerror=alert(1)>\n\nbody\n\nDiscussion:\n\n"
                     "eve on 2025-01-02: <b>bold</b>\n\nbob on 2025-01-03: fine"))
    html = _client(settings, store).get("/sources/src_00ff").text
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert html.count('<article class="post">') == 3  # the post and two comments


def test_unknown_ids_and_bad_spans_are_clear_errors(settings: Settings, corpus: Store) -> None:
    client = _client(settings, corpus)
    r = client.get("/sources/src_0123")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get("/sources/..%2F..%2Fetc%2Fpasswd").status_code == 404
    r = client.get(f"/v1/sources/{_ids(corpus)['jobs/retry.py']}", params={"lines": "5-2"})
    assert r.status_code == 400 and "must not run backwards" in r.json()["error"]["message"]


def test_with_api_keys_both_need_the_key(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "keyed", server={"api_keys": [KEY]})
    ingest(settings, [make_meetings(tmp_path)])
    store = Store(settings.db_url)
    try:
        client = _client(settings, store)
        sid = _ids(store)["transcript"]
        assert client.get(f"/sources/{sid}").status_code == 401
        assert client.get(f"/v1/sources/{sid}").status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        assert client.get(f"/sources/{sid}", headers=auth).status_code == 200
        assert client.get(f"/v1/sources/{sid}", headers=auth).json()["kind"] == "transcript"
    finally:
        store.close()


def test_a_recording_on_this_machine_is_played_from_the_page(settings: Settings, tmp_path: Path) -> None:
    media = tmp_path / "rec" / "IS1001a.mp4"
    media.parent.mkdir()
    media.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    ingest(settings, [make_meetings(tmp_path, recording=media.as_uri())])
    store = Store(settings.db_url)
    try:
        client = _client(settings, store)
        sid = _ids(store)["transcript"]
        html = client.get(f"/sources/{sid}", params={"t": "70-90"}).text
        assert re.search(rf'<video controls preload="metadata" src="/sources/{sid}/media#t=70,90">', html)
        assert 'data-t="70"' in html  # times seek the player on the page
        part = client.get(f"/sources/{sid}/media", headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content == b"ftypmp42"
        assert part.headers["content-type"] == "video/mp4"
    finally:
        store.close()
