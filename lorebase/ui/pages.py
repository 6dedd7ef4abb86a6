"""GET /feedback: the ratings as a small server-rendered page (counts per day and per model or
adapter, the thumbs-down items), linked from the chat UI's header. Everything shown is escaped.

Who may see it: anyone when the server has neither API keys nor a UI password (the loopback
demo); otherwise a request with a valid API key, or a browser signed in to the chat UI.
"""

from __future__ import annotations

import asyncio
import hmac
import sys
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lorebase.citations import Citation
from lorebase.errors import InvalidInput

router = APIRouter()

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d2433;
       overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; } th, td { border-bottom: 1px solid #dde; padding: .3rem .8rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.item { border: 1px solid #dde; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; }
.q { font-weight: 600; } .a { white-space: pre-wrap; margin: .4rem 0; } .meta, .src { color: #5a6275; font-size: .9em; }
/* one long unbroken answer or comment must wrap, not stretch the page */
.item, .q, .a, .comment, .src, td { overflow-wrap: anywhere; word-break: break-word; min-width: 0; }
.comment { background: #fff6e0; padding: .3rem .5rem; border-radius: 4px; }
"""


def allowed(request: Request) -> bool:
    """May this request see lorebase's pages (feedback, sources)?"""
    settings = request.app.state.services.settings
    keys = [k.get_secret_value().encode() for k in settings.server.api_keys]
    if not keys and settings.ui.password is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and any(hmac.compare_digest(token.strip().encode(), k) for k in keys):
        return True
    return _signed_in_to_chat(request)


def _signed_in_to_chat(request: Request) -> bool:
    if "chainlit.auth" not in sys.modules:  # the chat UI is not mounted in this process
        return False
    from chainlit.auth import get_token_from_cookies
    from chainlit.auth.jwt import decode_jwt

    token = get_token_from_cookies(request.cookies)
    if not token:
        return False
    try:
        decode_jwt(token)
    except Exception:  # expired, forged or signed with another secret
        return False
    return True


@router.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
async def feedback_page(request: Request, days: int = 30) -> HTMLResponse:
    if not allowed(request):
        body = ("<p>Sign in to the <a href=\"/chat\">chat</a> first, or send the API key "
                "(<code>Authorization: Bearer &lt;key&gt;</code>).</p>")
        return HTMLResponse(page("Feedback", body), status_code=401)
    if not 1 <= days <= 3650:
        raise InvalidInput("days must be from 1 to 3650")
    stats = await asyncio.to_thread(request.app.state.services.feedback.stats, days)
    return HTMLResponse(page("Feedback", render_stats(stats)))


def page(title: str, body: str, style: str = "") -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)} · lorebase</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}{style}</style></head>"
            f"<body>{body}</body></html>")


def _counts_table(first: str, rows: dict[str, dict[str, int]]) -> str:
    if not rows:
        return "<p>None yet.</p>"
    lines = "".join(f"<tr><td>{escape(k)}</td><td class=n>{v.get('up', 0)}</td><td class=n>{v.get('down', 0)}</td></tr>"
                    for k, v in rows.items())
    return f"<table><tr><th>{escape(first)}</th><th>up</th><th>down</th></tr>{lines}</table>"


def _source_label(raw: Any) -> str:
    try:
        c = Citation.model_validate(raw)
    except ValueError:
        return str(raw.get("id", "?")) if isinstance(raw, dict) else "?"
    return f"{c.id} {c.label}"


def _down_item(item: dict[str, Any]) -> str:
    sources = " · ".join(escape(_source_label(s)) for s in item.get("sources") or [])
    model = item.get("adapter") or item.get("model") or "?"
    comment = f"<div class=comment>{escape(item['comment'])}</div>" if item.get("comment") else ""
    return (f"<div class=item><div class=meta>#{int(item['id'])} · {escape(str(item.get('created_at', ''))[:19])} · "
            f"{escape(str(model))} · review: {escape(str(item.get('review_status', '')))}</div>"
            f"<div class=q>{escape(str(item.get('question', '')))}</div>"
            f"<div class=a>{escape(str(item.get('answer', '')).strip())}</div>{comment}"
            + (f"<div class=src>Sources: {sources}</div>" if sources else "") + "</div>")


def render_stats(stats: dict[str, Any]) -> str:
    days = int(stats.get("days", 30))
    down = stats.get("thumbs_down") or []
    return (f"<h1>Feedback, last {days} days</h1>"
            f"<p>{int(stats.get('total', 0))} ratings · <a href=\"/chat\">back to the chat</a> · "
            f"<a href=\"/v1/feedback/stats?days={days}\">JSON</a></p>"
            f"<h2>Per day</h2>{_counts_table('day', stats.get('per_day') or {})}"
            f"<h2>Per model or adapter</h2>{_counts_table('model / adapter', stats.get('per_adapter') or {})}"
            f"<h2>Thumbs down ({len(down)})</h2>"
            + ("".join(_down_item(i) for i in down) or "<p>None.</p>"))
