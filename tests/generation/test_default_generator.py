"""The real default generator profile, prepared from its PyPI slices and served by a real vLLM server,
answers a code question from an ingested git repository with a verified, cited answer.

Slow on 2 cores: joining and converting the 0.5B model takes about a minute, and vLLM's first start
two to four more. Every other test uses the tiny random model.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lorebase import generator_profiles, offline_models
from lorebase.services import Services
from lorebase.settings import DEFAULT_GENERATOR, load_settings
from tests.conftest import REPO_ROOT

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
PROFILE = generator_profiles.profile(DEFAULT_GENERATOR)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is missing: run `make install-vllm`"),
    pytest.mark.skipif(PROFILE is None or not generator_profiles.installed(PROFILE),
                       reason=f"the default generator's packages are not installed ({PROFILE.install_hint() if PROFILE else ''})"),
]

CODE = '''"""Helpers for reading web pages."""

import re

CHARSET = re.compile(r'<meta[^>]*charset=["\\']?([\\w-]+)', flags=re.I)


def page_encodings(html):
    """Return the list of character encodings declared in the meta tags of an HTML page."""
    return CHARSET.findall(html)


def strip_tags(html):
    """Return the text of an HTML page without its tags."""
    return re.sub(r"<[^>]+>", "", html)
'''


def _git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.mark.asyncio
async def test_default_profile_answers_a_code_question_with_a_verified_citation(tmp_path: Path) -> None:
    repo = tmp_path / "webtools"
    (repo / "webtools").mkdir(parents=True)
    (repo / "webtools" / "pages.py").write_text(CODE)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "page helpers")

    settings = load_settings(home=tmp_path / "home", generation={"max_new_tokens": 64, "max_model_len": 2048,
                                                                   "vllm_port": 18931})
    lines: list[str] = []
    offline_models.prepare_generator(settings, log=lines.append)
    assert any("joining 6 slices" in ln for ln in lines)  # the sha256-checked join ran
    assert not (settings.models_dir / "gguf").exists()  # the joined file is not kept
    svc = Services.build(settings)
    try:
        assert svc.ingest.ingest([str(repo)]).ok
        await svc.start_generator(load_adapters=False)
        assert svc.answers is not None
        a = await svc.answers.answer("What does page_encodings return?")
    finally:
        await svc.aclose()
    assert a.verdict.supported and a.verdict.mode in ("generated", "extractive"), a.verdict
    cited = [c for c in a.sources if f"[{c.id}]" in a.text]
    assert cited and all(c.path == "webtools/pages.py" for c in cited), (a.text, a.sources)
    assert any(c.start_line is not None and c.start_line <= 9 <= (c.end_line or 0) for c in cited)
    assert "encoding" in a.text.lower()
