"""From a SOURCE argument to the reader that understands it."""

from __future__ import annotations

import os
import re
from pathlib import Path

from lorebase.errors import InvalidInput
from lorebase.ingest.records import Reader
from lorebase.settings import Settings

_GITHUB_SPEC = re.compile(r"^github:([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100})$")


def reader_for(spec: str, settings: Settings) -> Reader:
    """Pick the reader for one SOURCE: `github:owner/repo`, a clone URL, a git work tree, a GitHub
    export (.json), or a transcript file or folder."""
    if spec.startswith("github:"):
        m = _GITHUB_SPEC.match(spec)
        if not m:
            raise InvalidInput(f"{spec!r}: expected github:OWNER/REPO")
        from lorebase.ingest.github_issues import GitHubApiReader

        return GitHubApiReader(m.group(1), settings, token=os.environ.get(settings.github.token_env) or None)

    from lorebase.ingest.git_repo import GitRepoReader, looks_like_git_url

    if looks_like_git_url(spec):
        return GitRepoReader(spec, settings)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InvalidInput(f"{spec}: no such file or folder (nor a clone URL or github:OWNER/REPO)")
    if path.is_dir() and (path / ".git").exists():
        return GitRepoReader(str(path), settings)

    from lorebase.ingest.github_issues import GitHubExportReader, is_github_export
    from lorebase.ingest.transcripts import TranscriptReader, is_transcript_file

    if path.is_file() and path.suffix.lower() == ".json" and is_github_export(path):
        return GitHubExportReader(path)
    if path.is_dir() or is_transcript_file(path):
        return TranscriptReader([path], settings)
    raise InvalidInput(f"{spec}: not a transcript (.vtt .srt .txt .json), a GitHub export, or a git repository")
