"""What comes in: ingest limits and URL hosts, transcription of recordings, GitHub's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from lorebase.settings.section import Section

URL_HOST_CLASSES = ("loopback", "private", "link-local", "unspecified", "multicast", "reserved", "non-global")


def _host_entry(entry: str) -> str:
    """An address class, a network (CIDR or one address) or a host name; lower-cased."""
    import ipaddress

    e = entry.strip().lower()
    if e in URL_HOST_CLASSES:
        return e
    try:
        ipaddress.ip_network(e, strict=False)
        return e
    except ValueError:
        pass
    if e and all(c.isalnum() or c in "-._" for c in e):
        return e
    raise ValueError(f"{entry!r} is neither an address class ({', '.join(URL_HOST_CLASSES)}), a network such as 10.0.0.0/8, nor a host name")


class IngestSettings(Section):
    transcript_window_min_s: float = Field(45.0, gt=0, description="A transcript chunk closes at a sentence end after this many seconds.")
    transcript_window_max_s: float = Field(90.0, gt=0, description="A transcript chunk never spans more seconds than this.")
    transcript_scales: int = Field(
        3, ge=1, le=4, description="Transcript windows are indexed at scales 1..N: N > 1 adds windows joining 2..N consecutive chunks."
    )
    max_file_bytes: int = Field(1_000_000, gt=0, description="Files larger than this are skipped (code and docs).")
    max_transcript_bytes: int = Field(
        20_000_000, gt=0, description="Transcript files (.vtt .srt .txt .json) larger than this are skipped; a 10-hour lecture is about 0.6 MB."
    )
    max_chunk_lines: int = Field(120, gt=0, description="Code chunks longer than this are split further.")
    max_diff_lines: int = Field(200, ge=0, description="Diff lines kept per commit.")
    max_commits: int = Field(5000, gt=0, description="At most this many commits are read on a first ingest.")
    exclude_globs: list[str] = Field(
        default_factory=list,
        description="Repository paths not to ingest, as shell patterns on the repo-relative path (`*` crosses folders), e.g. datasets/*.",
    )
    url_hosts_denied: list[str] | None = Field(
        None,
        description="URL sources sent through the API may not point at these: address classes (loopback, private, link-local, unspecified, multicast, reserved, non-global), networks (10.0.0.0/8) or host names; names are resolved. Unset: non-global when server.host is beyond loopback, none on loopback; [] allows all.",
    )
    url_hosts_allowed: list[str] = Field(
        default_factory=list, description="Host names or networks URL sources through the API may use even when url_hosts_denied covers them (an internal git server)."
    )
    api_roots: list[Path] = Field(
        default_factory=list,
        description="Folders whose files the HTTP API may ingest: a local path or file:// URL is resolved to its real absolute path (relative ones against these folders) and must lie inside one.",
    )

    @field_validator("url_hosts_denied", "url_hosts_allowed")
    @classmethod
    def _host_entries(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_host_entry(e) for e in v]

    @field_validator("transcript_window_max_s")
    @classmethod
    def _max_after_min(cls, v: float, info: Any) -> float:
        lo = info.data.get("transcript_window_min_s")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least transcript_window_min_s ({lo})")
        return v


class TranscribeSettings(Section):
    """How recordings (audio, video) become transcripts; a change here transcribes them anew."""

    compute_type: Literal["int8", "int8_float32", "int16", "float32"] = Field(
        "int8", description="Whisper weights' precision on CPU: int8 is fastest with about the same accuracy."
    )
    language: str | None = Field(None, description="Spoken language code (en, de, ...); unset detects it from the first 30 s.")
    beam_size: int = Field(5, ge=1, le=20, description="Beam search width: 1 is greedy and faster, 5 a little more accurate.")
    vad: bool = Field(True, description="Skip silence with the bundled Silero VAD before decoding.")
    window_s: float = Field(300.0, ge=30, description="Seconds of audio decoded and held at once; bounds memory on long recordings.")
    max_download_bytes: int = Field(4_000_000_000, gt=0, description="A recording fetched by URL may be at most this large.")


class GitHubSettings(Section):
    base_url: str = Field("https://api.github.com", description="REST API root; change it for GitHub Enterprise.")
    token_env: str = Field("GITHUB_TOKEN", description="Name of the environment variable that holds the token.")
    per_page: int = Field(100, ge=1, le=100)
    max_rate_limit_wait_s: float = Field(900.0, ge=0, description="Longest sleep for a rate-limit reset before giving up.")
