"""GET /sources/{id}: the source viewer that answer citations link to, server-rendered and
read-only. A file at its commit with the cited lines highlighted, a commit with its diff, an issue
or PR thread, or a transcript around the cited time with the cited span highlighted and, when the
recording is known, links that play it from each moment (a recording on this machine is served at
/sources/{id}/media). Everything shown is escaped; nothing on the page loads from another site.

Who may see it: as for /feedback (lorebase.ui.pages.allowed). The JSON twin is /v1/sources/{id}.
"""

from __future__ import annotations

import asyncio
import mimetypes
from html import escape
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from lorebase.citations import format_timestamp
from lorebase.source_view import SourceView, SourceViewer, parse_lines, parse_times
from lorebase.ui.pages import allowed, page

router = APIRouter()

STYLE = """
body { max-width: 72rem; }
nav { font-size: .9em; margin-bottom: 1rem; } .kind { text-transform: uppercase; font-size: .75em; letter-spacing: .05em; color: #5a6275; }
.meta { color: #5a6275; font-size: .9em; } .links a { margin-right: 1rem; }
.note { background: #fff6e0; padding: .4rem .7rem; border-radius: 4px; }
table.code { border-collapse: collapse; width: 100%; font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table.code td { border: 0; padding: 0 .6rem; vertical-align: top; }
table.code td.n { color: #8a91a5; text-align: right; user-select: none; width: 1%; white-space: nowrap; }
table.code td.n a { color: inherit; text-decoration: none; }
table.code td.src { white-space: pre-wrap; overflow-wrap: anywhere; }
tr.hl td { background: #fff3b0; } tr.hl td.n { color: #1d2433; font-weight: 600; }
tr:target td { outline: 2px solid #3b5bdb; outline-offset: -2px; }
tr.add td.src { background: #e6ffec; } tr.del td.src { background: #ffebe9; } tr.hunk td.src { color: #3b5bdb; background: #f1f5ff; }
tr.meta td.src { font-weight: 600; }
pre.head { white-space: pre-wrap; background: #f6f7f9; padding: .7rem 1rem; border-radius: 6px; }
.post { border: 1px solid #dde; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; white-space: pre-wrap; }
.seg { padding: .35rem .6rem; border-left: 3px solid transparent; margin: .15rem 0; }
.seg.hl { background: #fff3b0; border-left-color: #e8a200; }
.seg .ts { font: 12px ui-monospace, monospace; color: #3b5bdb; margin-right: .5rem; text-decoration: none; white-space: nowrap; }
video, audio { width: 100%; max-height: 50vh; margin: .5rem 0; }
"""

# Clicking a time plays the recording on this page from there (no page reload).
SEEK_SCRIPT = """<script>
for (const a of document.querySelectorAll('a[data-t]')) {
  a.addEventListener('click', (ev) => {
    const m = document.querySelector('video, audio');
    if (!m) return;
    ev.preventDefault();
    m.currentTime = Number(a.dataset.t);
    m.play().catch(() => {});
  });
}
</script>"""

KIND_TITLES = {"code": "File", "doc": "Document", "commit": "Commit", "issue": "Issue", "pull_request": "Pull request",
               "transcript": "Transcript"}


@router.get("/sources/{source_id}", response_class=HTMLResponse, include_in_schema=False)
async def source_page(request: Request, source_id: str, lines: str | None = None, t: str | None = None,
                      commit: str | None = None, context: int = 30, cite: str | None = None) -> HTMLResponse:
    if not allowed(request):
        body = ("<p>Sign in to the <a href=\"/chat\">chat</a> first, or send the API key "
                "(<code>Authorization: Bearer &lt;key&gt;</code>).</p>")
        return HTMLResponse(page("Source", body), status_code=401)
    span_lines, span_times = parse_lines(lines), parse_times(t)
    viewer = SourceViewer(request.app.state.services.store)
    view = await asyncio.to_thread(viewer.view, source_id, lines=span_lines, times=span_times, commit=commit,
                                   context=None if context < 0 else context)
    query = {k: v for k, v in (("lines", lines), ("t", t), ("commit", commit), ("cite", cite)) if v}
    return HTMLResponse(page(view.label, render(view, cite=cite, query=query), STYLE))


@router.get("/sources/{source_id}/media", include_in_schema=False, response_model=None)
async def source_media(request: Request, source_id: str) -> FileResponse | HTMLResponse:
    """The recording of a transcript, when it is a file on this machine (ranges supported, so the
    player can seek)."""
    if not allowed(request):
        return HTMLResponse(page("Source", "<p>Not signed in.</p>"), status_code=401)
    path = await asyncio.to_thread(SourceViewer(request.app.state.services.store).recording, source_id)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type)


def render(view: SourceView, *, cite: str | None = None, query: dict[str, str] | None = None) -> str:
    query = query or {}
    cited = f"Cited as <b>{escape(cite)}</b> · " if cite and len(cite) <= 8 else ""
    links = []
    if view.web_url and not view.media_url:  # a recording's own link is the one at the cited time
        name = "Open on GitHub" if view.web_url.startswith("https://github.com/") else "Open the original"
        links.append(f'<a href="{escape(view.web_url)}" rel="noopener noreferrer">{name}</a>')
    if view.media_url:
        links.append(f'<a href="{escape(view.media_url)}" rel="noopener noreferrer">Play the recording from '
                     f'{format_timestamp(view.span.get("start", 0.0))}</a>')
    links.append(f'<a href="/v1/sources/{quote(view.id)}?{escape(urlencode({k: v for k, v in query.items() if k != "cite"}))}">JSON</a>')
    head = (f'<nav><a href="/chat">← back to the chat</a></nav>'
            f'<div class="kind">{escape(KIND_TITLES.get(view.kind, view.kind))}'
            + (f" · {escape(view.repo)}" if view.repo else "") + "</div>"
            f"<h1>{escape(view.label)}</h1>"
            + (f'<p class="meta">{escape(view.title)}</p>' if not view.label.startswith(view.title) else "")
            + f'<p class="meta links">{cited}{" ".join(links)}</p>'
            + "".join(f'<p class="note">{escape(n)}</p>' for n in view.notes))
    if view.kind in ("code", "doc"):
        body = _file(view, query)
    elif view.kind == "commit":
        body = _commit(view)
    elif view.kind in ("issue", "pull_request"):
        body = "".join(f'<article class="post">{escape(p.text)}</article>' for p in view.posts)
    elif view.kind == "transcript":
        body = _transcript(view)
    else:
        body = f'<pre class="head">{escape(view.header)}</pre>'
    return head + body


def _file(view: SourceView, query: dict[str, str]) -> str:
    shown = f"lines {view.lines[0].number}–{view.lines[-1].number} of {view.total_lines}" if view.lines else "no lines"
    parts = []
    if view.span:
        parts.append(f"Lines {int(view.span['start_line'])}–{int(view.span['end_line'])} cited (highlighted)")
    parts.append(f"showing {shown}")
    if view.lines and (view.lines[0].number > 1 or view.lines[-1].number < (view.total_lines or 0)):
        whole = urlencode({**query, "context": -1})
        parts.append(f'<a href="?{escape(whole)}#L{int(view.span.get("start_line", 1))}">show the whole file</a>')
    if view.commit:
        parts.append(f"at commit <code>{escape(view.commit[:12])}</code>")
    rows = "".join(
        f'<tr id="L{ln.number}"{" class=hl" if ln.cited else ""}><td class="n"><a href="#L{ln.number}">{ln.number}</a></td>'
        f'<td class="src">{escape(ln.text) or " "}</td></tr>'
        for ln in view.lines
    )
    return f'<p class="meta">{" · ".join(parts)}</p><table class="code">{rows}</table>'


def _commit(view: SourceView) -> str:
    rows = "".join(f'<tr class="{d.kind}"><td class="src">{escape(d.text) or " "}</td></tr>' for d in view.diff)
    diff = f'<h2>Diff</h2><table class="code">{rows}</table>' if rows else "<p>No diff was ingested for this commit.</p>"
    return f'<pre class="head">{escape(view.header)}</pre>{diff}'


def _transcript(view: SourceView) -> str:
    out = []
    if view.span:
        start, end = view.span["start"], view.span["end"]
        when = format_timestamp(start) + (f"–{format_timestamp(end)}" if end > start else "")
        out.append(f'<p class="meta">The cited span, {when}, is highlighted; two minutes around it are shown.</p>')
    if view.local_media:
        frag = f"#t={view.span['start']:g},{view.span['end']:g}" if view.span and view.span["end"] > view.span["start"] else (
            f"#t={view.span['start']:g}" if view.span else "")
        out.append(f'<{view.local_media} controls preload="metadata" src="/sources/{quote(view.id)}/media{frag}"></{view.local_media}>')
    first = True
    for seg in view.segments:
        anchor = ""
        if seg.cited and first:
            anchor, first = ' id="cited"', False
        span = format_timestamp(seg.start) + (f"–{format_timestamp(seg.end)}" if seg.end is not None else "")
        if view.web_url and not view.local_media:
            sep = "&" if "#" in view.web_url else "#"
            link = f'<a class="ts" href="{escape(view.web_url)}{sep}t={int(seg.start)}" rel="noopener noreferrer">{span}</a>'
        else:
            link = f'<a class="ts" href="#t{int(seg.start)}" data-t="{seg.start:g}">{span}</a>'
        out.append(f'<div class="seg{" hl" if seg.cited else ""}"{anchor}><span id="t{int(seg.start)}"></span>{link}'
                   f"<span>{escape(seg.text)}</span></div>")
    if view.local_media:
        out.append(SEEK_SCRIPT)
    return "".join(out)
