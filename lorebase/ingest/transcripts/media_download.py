"""Fetching a recording named by an http(s) URL into the data home, with a size cap.

Streamed to ``<data home>/downloads/<url hash>/<file name>`` through a ``.partial`` file, so a cut
download never looks complete. The ETag / Last-Modified of the last download are kept beside it
and sent back, so re-ingesting an unchanged remote recording costs one request, not a download.
Only http and https are followed, redirects included; nothing goes through a shell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from lorebase.errors import InvalidInput, UpstreamError
from lorebase.ingest.transcripts.media import MEDIA_SUFFIXES
from lorebase.settings import Settings

TIMEOUT_S = 30.0  # per socket operation, not for the whole download
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def is_media_url(spec: str) -> bool:
    """An http(s) URL whose path ends in a recording's extension."""
    parts = urlsplit(spec)
    return parts.scheme.lower() in ("http", "https") and PurePosixPath(unquote(parts.path)).suffix.lower() in MEDIA_SUFFIXES


def url_lecture_id(url: str) -> str:
    """`https://host/cs101/lec1.mp4` -> `cs101/lec1`: the last folder and the file's stem, the same
    shape as a recording found in a folder."""
    path = PurePosixPath(unquote(urlsplit(url).path))
    folder = path.parent.name
    return f"{folder}/{path.stem}" if folder else path.stem


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise InvalidInput(f"redirected to {newurl!r}: only http and https are followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_recording(url: str, settings: Settings) -> Path:
    """The local copy of the recording at ``url``, downloaded now or reused when the server says
    it has not changed. Raises InvalidInput (bad URL, too large) or UpstreamError (unreachable);
    their messages leave the URL out for the caller to put in front."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput("only http and https URLs of a host can be fetched")
    name = _SAFE_NAME.sub("_", PurePosixPath(unquote(parts.path)).name).strip("._") or "recording"
    folder = settings.home / "downloads" / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    dest = folder / name
    state_file = folder / "download.json"
    state = _read_state(state_file) if dest.is_file() else {}
    headers = {"User-Agent": "lorebase"}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    cap = settings.transcribe.max_download_bytes
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cap:
                raise InvalidInput(f"{int(length):,} bytes is more than transcribe.max_download_bytes ({cap:,})")
            folder.mkdir(parents=True, exist_ok=True)
            _stream_to(resp, dest, cap)
            new_state = {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")}
    except urllib.error.HTTPError as e:
        if e.code == 304 and dest.is_file():
            return dest
        raise UpstreamError(f"cannot download: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise UpstreamError(f"cannot download: {_reason(e.reason)} (is the host reachable from here?)") from None
    except TimeoutError:
        raise UpstreamError(f"cannot download: no answer within {TIMEOUT_S:.0f} s") from None
    except OSError as e:  # connection reset mid-body, disk full
        raise UpstreamError(f"cannot download: {_reason(e)}") from None
    state_file.write_text(json.dumps(new_state), encoding="utf-8")
    return dest


def _stream_to(resp: IO[bytes], dest: Path, cap: int) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    size = 0
    try:
        with open(tmp, "wb") as f:
            while block := resp.read(1 << 20):
                size += len(block)
                if size > cap:
                    raise InvalidInput(f"more than transcribe.max_download_bytes ({cap:,} bytes)")
                f.write(block)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
