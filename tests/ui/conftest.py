"""Chainlit is imported once per process and writes into its app root: point that at a temporary
data home (as the server does) before any test imports it, never at the repository."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lorebase.settings import load_settings
from lorebase.ui import chainlit_home


@pytest.fixture(scope="session")
def chainlit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "chainlit.config" not in sys.modules:
        chainlit_home.prepare(load_settings(home=tmp_path_factory.mktemp("chainlit-home")))
    from chainlit.config import APP_ROOT

    return Path(APP_ROOT)
