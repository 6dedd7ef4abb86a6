"""From a SOURCE argument to the reader that understands it."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

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
        from lorebase.ingest.github.api_reader import GitHubApiReader

        return GitHubApiReader(m.group(1), settings, token=os.environ.get(settings.github.token_env) or None)

    from lorebase.ingest.transcripts.media_download import is_media_url

    if is_media_url(spec):  # fetched when read, not here: resolving stays instant
        from lorebase.ingest.transcripts.reader import TranscriptReader

        return TranscriptReader([], settings, urls=[spec])

    from lorebase.ingest.git.repo import GitRepoReader, looks_like_git_url

    if looks_like_git_url(spec):
        return GitRepoReader(spec, settings)
    path = _expand_user(spec)
    if not path.exists():
        raise InvalidInput(f"{spec}: no such file or folder (nor a clone URL or github:OWNER/REPO)")
    if path.is_dir() and (path / ".git").exists():
        return GitRepoReader(str(path), settings)

    from lorebase.ingest.github.export_reader import GitHubExportReader, is_github_export
    from lorebase.ingest.transcripts.media import is_media_file
    from lorebase.ingest.transcripts.reader import TranscriptReader, is_transcript_file

    if path.is_file() and path.suffix.lower() == ".json" and is_github_export(path):
        return GitHubExportReader(path)
    if path.is_dir() or is_transcript_file(path) or is_media_file(path):
        return TranscriptReader([path], settings)
    raise InvalidInput(
        f"{spec}: not a transcript (.vtt .srt .txt .json), a recording (.wav .mp3 .m4a .flac .ogg .mp4 .webm .mkv .mov), "
        "a GitHub export, or a git repository"
    )


def is_local(spec: str) -> bool:
    """Whether ``spec`` names something on this machine (a path or a file:// URL), read the same way
    as :func:`reader_for` reads it."""
    from lorebase.ingest.git.gitcli import looks_like_git_url
    from lorebase.ingest.transcripts.media_download import is_media_url

    if spec.startswith("github:") or is_media_url(spec):
        return False
    if looks_like_git_url(spec):
        return urlsplit(spec).scheme.lower() == "file"
    return True


def confine_to_roots(spec: str, roots: Sequence[Path]) -> str:
    """The spec to ingest for one sent through the API: a remote one as it is; a local one (a path,
    relative, with ``~`` or ``..``, or a ``file://`` URL with or without ``localhost``) as the real
    absolute path it names, symbolic links resolved, which must lie inside one of ``roots``. A
    relative path is relative to the first root under which it exists (else to the first root),
    never to the server's working directory. Raises InvalidInput otherwise."""
    if not is_local(spec):
        return spec
    real_roots = [Path(r).expanduser().resolve() for r in roots]
    allowed = ", ".join(str(r) for r in real_roots) or "none configured"
    refused = f"{spec}: through the API, local paths are ingested only inside ingest.api_roots ({allowed})"
    if not real_roots:
        raise InvalidInput(refused)
    is_url = spec[:5].lower() == "file:"
    raw = spec
    if is_url:
        parts = urlsplit(spec)
        if parts.netloc.lower() not in ("", "localhost"):
            raise InvalidInput(f"{spec}: a file:// URL must name a path on this machine (file:///PATH)")
        if parts.query or parts.fragment or "%" in parts.path:
            # git would decode %-escapes that this check did not see: refuse rather than guess
            raise InvalidInput(f"{spec}: a file:// URL through the API must be a plain absolute path, without %, ? or #")
        raw = parts.path
    if not raw.strip():
        raise InvalidInput("an empty source names no file or folder")
    path = _expand_user(raw)
    if not path.is_absolute():
        candidates = [r / path for r in real_roots]
        path = next((c for c in candidates if c.exists()), candidates[0])
    real = path.resolve()
    if not any(real == r or r in real.parents for r in real_roots):
        raise InvalidInput(refused)
    if is_url and spec[5:7] == "//":  # a clone URL stays one (git clones it); file:/PATH is the path
        if any(c in str(real) for c in "%?#"):
            raise InvalidInput(f"{spec}: the path holds %, ? or #, which a file:// URL cannot carry plainly; give the path itself")
        return "file://" + str(real)
    return str(real)


def _expand_user(raw: str) -> Path:
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # ~name of a user this machine does not know
        raise InvalidInput(f"{raw}: no such user's home folder") from None
