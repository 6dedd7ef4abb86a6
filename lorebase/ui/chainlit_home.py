"""Chainlit's own folder ("app root") in the data home: its config.toml, the readme it shows, the
translations and uploaded-file folder it writes, and lorebase's additions to the page (the answer
element, a script and a style, from lorebase/ui/static). Never the user's working directory.

The page must work offline: Chainlit's packaged index.html loads a font from Google and KaTeX's
style from a CDN, so lorebase serves its own copy of that page (`custom_build`) without them;
the scripts and styles themselves are Chainlit's packaged ones. Maths rendering is off and the
text uses the system's fonts.

Chainlit reads CHAINLIT_APP_ROOT once, when `chainlit.config` is first imported, so this runs
before anything imports chainlit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

from lorebase.errors import SettingsError
from lorebase.settings import Settings

APP_ROOT_ENV = "CHAINLIT_APP_ROOT"
FEEDBACK_PAGE = "/feedback"
EVAL_REPORTS_PAGE = "/v1/eval/runs?format=html"  # behind the API key when keys are set

STATIC = Path(__file__).with_name("static")
ELEMENT = "LorebaseAnswer"  # the answer's custom element: public/elements/LorebaseAnswer.jsx
BUILD = "build"  # lorebase's copy of Chainlit's page, in the app root


def _svg_icon(paths: str) -> str:
    """An outline icon, inline so the header link needs no file served."""
    svg = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='currentColor' "
           f"stroke-width='2' stroke-linecap='round' stroke-linejoin='round'>{paths}</svg>")
    return "data:image/svg+xml," + quote(svg)


# a thumbs-up for the ratings, a bar chart for the evaluation reports
FEEDBACK_ICON_URL = _svg_icon("<path d='M7 10v12M15 5.9 14 10h5.8a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.4 22H4a2 2 0 "
                              "0 1-2-2v-8a2 2 0 0 1 2-2h2.8a2 2 0 0 0 1.8-1.1L12 2a3.1 3.1 0 0 1 3 3.9Z'/>")
EVAL_ICON_URL = _svg_icon("<path d='M3 3v18h18'/><path d='M7 16v-5M12 16V7M17 16v-8'/>")

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

Ask about the ingested lectures, meetings, repositories and GitHub issues. Every answer cites its
sources as chips (S1, S2…) after the sentences they support: click one to open its card under the
answer (the passage, and which sentences it supports), then open the source viewer for the exact
lines, diff, thread or moment of the recording, or the original on GitHub when it is known.

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

# Offline: lorebase's copy of the page (no web fonts, no CDN), its script and style.
custom_build = {_toml("./" + BUILD)}
custom_css = "/public/lorebase.css"
custom_js = "/public/lorebase.js"
custom_meta_image_url = "/public/logo_light.svg"

[[UI.header_links]]
name = "Feedback"
display_name = "Feedback"
icon_url = {_toml(FEEDBACK_ICON_URL)}
url = {_toml(FEEDBACK_PAGE)}
target = "_blank"

[[UI.header_links]]
name = "Evaluation"
display_name = "Evaluation reports"
icon_url = {_toml(EVAL_ICON_URL)}
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
    (root / "public" / "elements").mkdir(parents=True, exist_ok=True)
    for name, svg in PUBLIC_FILES.items():
        (root / "public" / name).write_text(svg, encoding="utf-8")
    shutil.copyfile(STATIC / f"{ELEMENT}.jsx", root / "public" / "elements" / f"{ELEMENT}.jsx")
    for name in ("lorebase.css", "lorebase.js"):
        shutil.copyfile(STATIC / name, root / "public" / name)
    offline_build(root / BUILD)
    (root / "chainlit.md").write_text(README.format(name=settings.ui.name, feedback=FEEDBACK_PAGE), encoding="utf-8")
    os.environ[APP_ROOT_ENV] = str(root)
    return root


# <link> and <script> tags that load from another site (the web font, KaTeX's style, preconnects)
_REMOTE_TAG = re.compile(r"<link\b[^>]*\bhref=\"https?://[^>]*>|<script\b[^>]*\bsrc=\"https?://[^>]*>\s*</script>", re.IGNORECASE)


def offline_page(index_html: str) -> str:
    """Chainlit's index.html without anything that loads from another site."""
    return _REMOTE_TAG.sub("", index_html)


def offline_build(build: Path) -> None:
    """lorebase's copy of Chainlit's packaged frontend: its index.html made offline, and its
    assets linked (copied where links are not possible)."""
    spec = importlib.util.find_spec("chainlit")
    if spec is None or not spec.submodule_search_locations:
        return
    dist = Path(next(iter(spec.submodule_search_locations))) / "frontend" / "dist"
    build.mkdir(parents=True, exist_ok=True)
    (build / "index.html").write_text(offline_page((dist / "index.html").read_text(encoding="utf-8")), encoding="utf-8")
    for name in ("favicon.svg", "logo_dark.svg", "logo_light.svg"):
        if (dist / name).is_file():
            shutil.copyfile(dist / name, build / name)
    assets = build / "assets"
    if assets.is_symlink() and assets.resolve() == (dist / "assets").resolve():
        return
    if assets.is_symlink() or assets.is_file():
        assets.unlink()
    elif assets.is_dir():
        shutil.rmtree(assets)
    try:
        assets.symlink_to(dist / "assets", target_is_directory=True)
    except OSError:
        shutil.copytree(dist / "assets", assets)
