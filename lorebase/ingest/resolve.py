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
    """Pick the reader for one SOURCE: `github:owner/repo`, an http(s) URL of a recording, a clone
    URL, a git work tree, a GitHub export (.json), or a transcript or recording file or folder."""
    if "\0" in spec:  # no path or URL holds one; the OS would refuse it deep inside
        raise InvalidInput(f"{spec!r}: a source must not contain a NUL character")
    if spec.startswith("github:"):
        m = _GITHUB_SPEC.match(spec)
        if not m:
            raise InvalidInput(f"{spec!r}: expected github:OWNER/REPO")
        from lorebase.ingest.github_issues import GitHubApiReader

        return GitHubApiReader(m.group(1), settings, token=os.environ.get(settings.github.token_env) or None)

    from lorebase.ingest.media_download import is_media_url

    if is_media_url(spec):  # fetched when read, not here: resolving stays instant
        from lorebase.ingest.transcripts import TranscriptReader

        return TranscriptReader([], settings, urls=[spec])

    from lorebase.ingest.git_repo import GitRepoReader, looks_like_git_url

    if looks_like_git_url(spec):
        return GitRepoReader(spec, settings)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InvalidInput(f"{spec}: no such file or folder (nor a clone URL or github:OWNER/REPO)")
    if path.is_dir() and (path / ".git").exists():
        return GitRepoReader(str(path), settings)

    from lorebase.ingest.github_issues import GitHubExportReader, is_github_export
    from lorebase.ingest.media import is_media_file
    from lorebase.ingest.transcripts import TranscriptReader, is_transcript_file

    if path.is_file() and path.suffix.lower() == ".json" and is_github_export(path):
        return GitHubExportReader(path)
    if path.is_dir() or is_transcript_file(path) or is_media_file(path):
        return TranscriptReader([path], settings)
    raise InvalidInput(
        f"{spec}: not a transcript (.vtt .srt .txt .json), a recording (.wav .mp3 .m4a .flac .ogg .mp4 .webm .mkv .mov), "
        "a GitHub export, or a git repository"
    )
