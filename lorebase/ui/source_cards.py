"""How a citation looks in the chat: a card (Markdown) with a link to the exact place where its
origin is known, and the snippet; and the sources line under an answer.

Snippets are ingested text, so they are rendered inert: code in a fence longer than any backtick
run inside it, prose with Markdown's special characters escaped.
"""

from __future__ import annotations

import re

from lorebase.citations import Citation

_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
_LINE_START = re.compile(r"^(\s*)(-|=|\d+(?=[.)]))", re.MULTILINE)
_CODE_KINDS = ("code", "commit")
KIND_NAMES = {"transcript": "lecture", "code": "code", "doc": "doc", "commit": "commit", "issue": "issue",
              "pull_request": "pull request"}


def escape_markdown(text: str) -> str:
    text = _SPECIAL.sub(r"\\\1", text)
    # a line opening like a list item or heading underline: "- x" -> "\- x", "1. x" -> "1\. x"
    return _LINE_START.sub(lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)), text)


def web_link(c: Citation) -> str | None:
    """The citation's URL when a browser can open it (lorebase:// references cannot)."""
    return c.uri if c.uri and c.uri.startswith(("https://", "http://")) else None


def heading(c: Citation) -> str:
    """`path:10-42@abc1234` or `Lecture 2 @ 03:15`, linked to GitHub or the recording when known."""
    text = escape_markdown(c.label)
    url = web_link(c)
    return f"[{text}](<{url.replace('>', '%3E').replace(' ', '%20')}>)" if url else text


def _fence(snippet: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", snippet)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{snippet}\n{fence}"


def card(c: Citation) -> str:
    """The Markdown of a source element."""
    where = KIND_NAMES.get(c.kind, c.kind)
    if c.repo:
        where += f" · {escape_markdown(c.repo)}"
    if c.kind != "transcript" and c.title and c.title != c.label:
        where += f" · {escape_markdown(c.title)}"
    body = _fence(c.snippet) if c.kind in _CODE_KINDS else escape_markdown(c.snippet)
    # the id leads: Chainlit's side panel may show all cards of an answer one under another
    return f"**{c.id} · {heading(c)}**\n\n*{where}*\n\n{body}\n"


def sources_line(sources: list[Citation]) -> str:
    """`Sources: S1 path:10-42@abc1234 · S2 Lecture 2 @ 03:15`: each id is also the element's
    name, which Chainlit turns into a link that opens the card."""
    if not sources:
        return ""
    return "**Sources:** " + " · ".join(f"{c.id} {escape_markdown(c.label)}" for c in sources)
