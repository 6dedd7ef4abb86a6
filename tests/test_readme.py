"""The README's settings table is the settings tree: regenerate it with `python -m lorebase.docs_table`."""

from lorebase.docs_table import render_table, table_in_readme
from lorebase.settings import settings_rows
from tests.conftest import REPO_ROOT


def test_readme_lists_every_setting_as_the_code_defines_it() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert table_in_readme(readme) == render_table(), "README settings table is stale: run python -m lorebase.docs_table"
    assert len(settings_rows()) > 20
