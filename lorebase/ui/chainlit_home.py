"""Chainlit's own folder ("app root") in the data home: its config.toml, the readme it shows, the
translations and uploaded-file folder it writes. Never the user's working directory.

Chainlit reads CHAINLIT_APP_ROOT once, when `chainlit.config` is first imported, so this runs
before anything imports chainlit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from lorebase.errors import SettingsError
from lorebase.settings import Settings

APP_ROOT_ENV = "CHAINLIT_APP_ROOT"
FEEDBACK_PAGE = "/feedback"
EVAL_REPORTS_PAGE = "/v1/eval/runs?format=html"  # behind the API key when keys are set

# a thumbs-up outline, inline so the header link needs no file served
_ICON = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='currentColor' "
         "stroke-width='2'><path d='M7 10v12M15 5.9 14 10h5.8a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.4 22H4a2 2 0 "
         "0 1-2-2v-8a2 2 0 0 1 2-2h2.8a2 2 0 0 0 1.8-1.1L12 2a3.1 3.1 0 0 1 3 3.9Z'/></svg>")
ICON_URL = "data:image/svg+xml," + quote(_ICON)

# The wordmark and favicon Chainlit shows instead of its own (it looks in <app root>/public).
_MARK = ("<path d='M6 5h9a3 3 0 0 1 3 3v17a2.5 2.5 0 0 0-2.5-2.5H6z' fill='#3b5bdb'/>"
         "<path d='M26 5h-5a3 3 0 0 0-3 3v17a2.5 2.5 0 0 1 2.5-2.5H26z' fill='#74c0fc'/>")


def _logo(text_color: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='150' height='32' viewBox='0 0 150 32'>{_MARK}"
            f"<text x='34' y='23' font-family='system-ui, sans-serif' font-size='20' font-weight='600' "
            f"fill='{text_color}'>lorebase</text></svg>")


PUBLIC_FILES = {
    "logo_light.svg": _logo("#1d2433"),
    "logo_dark.svg": _logo("#f1f3f5"),
    "favicon.svg": f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>{_MARK}</svg>",
}

README = """# {name}

Ask about the ingested lectures, repositories and GitHub issues. Every answer cites its sources
as [S1], [S2]…: click one to see the passage and, where its origin is known, a link to the exact
lines on GitHub or the moment in the lecture.

- **Settings** (the gear by the message box): *Ask*, or *Summarize* (the chosen lecture, else the
  sources found for your message), and filters by source kind, repository or lecture.
- **Thumbs up / down** under an answer, with an optional comment, go to the team's review queue
  and the next fine-tuning round. Ratings so far: [feedback]({feedback}).
"""


def _toml(value: object) -> str:
    # JSON strings, lists and booleans are valid TOML values
    return json.dumps(value)


def config_toml(settings: Settings, chainlit_version: str) -> str:
    ui = settings.ui
    return f"""# Written by lorebase at every start; edit lorebase's settings (ui.*) instead.
[project]
user_env = []
session_timeout = 3600
user_session_timeout = 1296000
cache = false
persist_user_env = false
mask_user_env = false
# Same origin only: no other site may call the UI's endpoints with a visitor's session.
allow_origins = []

[features]
unsafe_allow_html = false
latex = false
user_message_markdown = true
user_message_autoscroll = true
assistant_message_autoscroll = true
auto_tag_thread = false
# Editing a question would silently drop the rated answers after it.
edit_message = false
allow_thread_sharing = false
favorites = false

[features.spontaneous_file_upload]
enabled = false

[features.audio]
enabled = false

[features.mcp]
enabled = false

[UI]
name = {_toml(ui.name)}
description = "Answers with citations from lectures, code and issues."
default_theme = "light"
cot = "tool_call"
confirm_new_chat = false
alert_style = "classic"

[[UI.header_links]]
name = "Feedback"
display_name = "Feedback"
icon_url = {_toml(ICON_URL)}
url = {_toml(FEEDBACK_PAGE)}
target = "_blank"

[[UI.header_links]]
name = "Evaluation"
display_name = "Evaluation reports"
icon_url = {_toml(ICON_URL)}
url = {_toml(EVAL_REPORTS_PAGE)}
target = "_blank"

[meta]
generated_by = {_toml(chainlit_version)}
"""


def async_url(db_url: str) -> str:
    """The asyncio form of the database URL for Chainlit's data layer: aiosqlite for SQLite,
    psycopg (v3, async mode) for PostgreSQL; other databases are not supported by the UI."""
    from lorebase.store.db import normalize_url

    db_url = normalize_url(db_url)
    if db_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + db_url.removeprefix("sqlite:///")
    if db_url.startswith(("sqlite+aiosqlite:///", "postgresql+psycopg://")):
        return db_url
    scheme = db_url.split(":", 1)[0]
    raise SettingsError(
        f"the chat UI keeps conversations in SQLite or PostgreSQL (psycopg), and database_url uses {scheme!r}: "
        "set ui.enabled=false (LOREBASE_UI__ENABLED=false) or use one of those"
    )


def connect_args(db_url: str) -> dict[str, object]:
    """Connection options for the UI's async engine: wait for a busy SQLite file rather than fail
    (the API's own engine writes to it too); give up on an unreachable server after 30 s."""
    return {"timeout": 30} if async_url(db_url).startswith("sqlite") else {"connect_timeout": 30}


def prepare(settings: Settings) -> Path:
    """Create the app root with a fresh config and readme, and point Chainlit at it."""
    from importlib.metadata import version

    root = settings.home / "ui"
    (root / ".chainlit").mkdir(parents=True, exist_ok=True)
    (root / ".chainlit" / "config.toml").write_text(config_toml(settings, version("chainlit")), encoding="utf-8")
    (root / "public").mkdir(exist_ok=True)
    for name, svg in PUBLIC_FILES.items():
        (root / "public" / name).write_text(svg, encoding="utf-8")
    (root / "chainlit.md").write_text(README.format(name=settings.ui.name, feedback=FEEDBACK_PAGE), encoding="utf-8")
    os.environ[APP_ROOT_ENV] = str(root)
    return root
