"""Mounting the chat UI: Chainlit's files go to the data home, it is never open to the network
without a password, the login is what the settings say, and nothing imports chainlit early."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fastapi.routing import Mount

from lorebase.api.app import create_app
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.ui import chainlit_home, login
from lorebase.ui.chat_options import ANY, ChatOptions, corpus_facets
from tests.conftest import REPO_ROOT


def test_importing_the_api_does_not_import_chainlit() -> None:
    code = "import sys, lorebase.api.app, lorebase.ui.mount, lorebase.ui.pages; print('chainlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_the_chainlit_config_lives_in_the_data_home_and_chainlit_accepts_it(
    tmp_path: Path, chainlit_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chainlit.config import FeaturesSettings, ProjectSettings, UISettings

    monkeypatch.setenv("CHAINLIT_APP_ROOT", str(chainlit_root))  # restored after the test

    settings = load_settings(home=tmp_path / "home", ui={"name": "Course helper"})
    root = chainlit_home.prepare(settings)
    assert root == settings.home / "ui" and os.environ["CHAINLIT_APP_ROOT"] == str(root)
    data = tomllib.loads((root / ".chainlit" / "config.toml").read_text())
    ui = UISettings(**data["UI"])
    assert ui.name == "Course helper" and ui.header_links and ui.header_links[0].url == "/feedback"
    assert ProjectSettings(**data["project"]).allow_origins == []
    features = FeaturesSettings(**data["features"])
    assert features.spontaneous_file_upload is not None and features.spontaneous_file_upload.enabled is False
    assert data["meta"]["generated_by"] > "0.3.0"  # chainlit refuses configs it thinks outdated
    assert (root / "chainlit.md").is_file() and (root / "public" / "logo_light.svg").is_file()
    assert not (tmp_path / ".chainlit").exists()  # the working directory (tmp_path) is left alone
    # lorebase's additions to the page, and its offline copy of the page
    assert (root / "public" / "elements" / "LorebaseAnswer.jsx").is_file() and (root / "public" / "lorebase.js").is_file()
    assert ui.custom_build == "./build" and ui.custom_js == "/public/lorebase.js" and ui.custom_css == "/public/lorebase.css"
    index = (root / "build" / "index.html").read_text()
    assert "<!-- FONT START -->" in index and '<script type="module"' in index  # still Chainlit's page
    assert "https://" not in index and "http://" not in index
    assert (root / "build" / "assets").resolve().is_dir() and any((root / "build" / "assets").glob("index-*.js"))
    links = {link.name: link.icon_url for link in ui.header_links or []}
    assert links["Feedback"] != links["Evaluation"]  # each link has its own icon


def test_the_ui_is_not_served_on_a_network_address_without_a_password(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", server={"host": "0.0.0.0", "api_keys": ["k"]})
    app = create_app(settings, start_generator=False)
    assert not any(isinstance(r, Mount) and r.path == "/chat" for r in app.routes)
    assert not (settings.home / "ui").exists()


def test_session_secret_is_made_once_privately_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAINLIT_AUTH_SECRET", raising=False)
    settings = load_settings(home=tmp_path / "home")
    root = tmp_path / "root"
    root.mkdir()
    first = login.session_secret(settings, root)
    assert len(first) >= 32 and login.session_secret(settings, root) == first
    assert stat.S_IMODE((root / ".auth-secret").stat().st_mode) == 0o600
    given = load_settings(home=tmp_path / "home", ui={"auth_secret": "s" * 40})
    assert login.session_secret(given, root) == "s" * 40
    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "from-env")
    assert login.session_secret(given, root) == "from-env"


def test_password_login_checks_both_name_and_password(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, ui={"username": "tutor", "password": "hunter22"})
    assert login.credentials_match(s, "tutor", "hunter22")
    assert not login.credentials_match(s, "tutor", "hunter2")
    assert not login.credentials_match(s, "admin", "hunter22")
    assert not login.credentials_match(load_settings(home=tmp_path), "lorebase", "")  # no password: no password login


def test_chat_options_turn_settings_into_filters_and_model(store: Store) -> None:
    assert ChatOptions.parse(None) == ChatOptions("answer", {}, None)
    assert ChatOptions.parse({"mode": "chat"}).mode == "answer"  # a mode the UI does not offer falls back
    assert ChatOptions.parse({"mode": "summarize"}).mode == "summary"  # as sessions saved before the rename
    opts = ChatOptions.parse({"mode": "summary", "kind": "transcript", "repo": ANY, "lecture": "Lecture 2",
                              "model": "smol"})
    # The base model chosen by name stays named, so Services can tell it from "the served default".
    assert opts == ChatOptions("summary", {"kind": "transcript", "lecture": "Lecture 2"}, "smol")
    assert ChatOptions.parse({"model": "lora-v2"}).adapter == "lora-v2"
    assert ChatOptions.parse({"model": ANY}).adapter is None  # the served default, resolved by Services


def test_filter_choices_come_from_the_store(store: Store) -> None:
    from lorebase.store.models import Source

    with store.session() as s:
        for i, (kind, repo, lecture) in enumerate([("code", "o/b", None), ("issue", "o/a", None),
                                                   ("transcript", None, "Lecture 1"), ("code", "o/a", None)]):
            s.add(Source(id=f"src_{i}", key=f"k{i}", kind=kind, repo=repo, lecture=lecture, content_hash="h"))
    f = corpus_facets(store)
    assert (f.kinds, f.repos, f.lectures) == (["code", "issue", "transcript"], ["o/a", "o/b"], ["Lecture 1"])
