"""Writes the README's settings table from the settings tree: `python -m lorebase.docs_table`."""

from __future__ import annotations

from pathlib import Path

from lorebase.settings import settings_rows

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def render_table() -> str:
    lines = ["| key | default | what it does |", "|---|---|---|"]
    for key, default, desc in settings_rows():
        env = "LOREBASE_" + key.upper().replace(".", "__")
        lines.append(f"| `{key}` (`{env}`) | `{default}` | {desc} |")
    return "\n".join(lines)


def table_in_readme(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def update(readme: Path) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{render_table()}\n{END}{tail}")


if __name__ == "__main__":
    update(Path(__file__).resolve().parent.parent / "README.md")
