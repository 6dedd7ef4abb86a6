"""A small real corpus for the UI and the source viewer: a git repository (two commits, a GitHub
remote, so citations link to GitHub) and a meeting transcript whose id contains "S1" (IS1001a, as
the AMI meetings are named), with a sidecar naming its recording."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lorebase.ingest.service import IngestService
from lorebase.settings import Settings
from lorebase.store import Store

REMOTE = "https://github.com/lorebase-demo/jobs.git"
RECORDING = "https://media.example.org/meetings/IS1001a.mp4"
MEETING = "IS1001a"

_HELPERS = "\n\n".join(
    f'def report_{name}(jobs: list[str]) -> str:\n    """A one-line {name} report of the queue."""\n'
    f'    return "{name}: " + ", ".join(jobs)'
    for name in ("daily", "weekly", "monthly", "failed", "stale", "pending", "running", "done")
)

RETRY_V1 = f'''"""Retry policy of the job scheduler."""

BASE_DELAY_S = 30
MAX_ATTEMPTS = 3


{_HELPERS}


def retry_delay(attempt: int) -> int:
    """Seconds to wait before retry number `attempt` (from 1): thirty seconds, the same each time."""
    return BASE_DELAY_S


def should_retry(attempt: int) -> bool:
    """A failed job is retried at most three times."""
    return attempt <= MAX_ATTEMPTS
'''

RETRY_V2 = RETRY_V1.replace(
    '''    """Seconds to wait before retry number `attempt` (from 1): thirty seconds, the same each time."""
    return BASE_DELAY_S''',
    '''    """Seconds to wait before retry number `attempt` (from 1): thirty seconds, doubled for each later retry."""
    return BASE_DELAY_S * 2 ** (attempt - 1)''',
)

README = """# jobs

A tiny job scheduler. Failed jobs are retried with exponential backoff; see `jobs/retry.py`.
"""

VTT = """WEBVTT

00:00:00.000 --> 00:00:20.000
Project manager: Welcome to the kick-off meeting of the scheduler project, everyone.

00:00:20.000 --> 00:00:50.000
Project manager: Today we decide how the scheduler handles jobs that fail halfway.

00:01:10.000 --> 00:01:30.000
Engineer: We agreed that a failed job waits thirty seconds before its first retry, and the wait doubles for each later retry.

00:01:30.000 --> 00:02:00.000
Engineer: After three failed retries the job is marked as failed and the team gets an email.

00:02:40.000 --> 00:03:10.000
Designer: The dashboard shows the failed jobs in red, with the time of the next retry.

00:03:10.000 --> 00:03:40.000
Designer: Users can also cancel a retry from the dashboard.

00:04:20.000 --> 00:04:50.000
Project manager: Next week we review the email template and the dashboard colours.

00:04:50.000 --> 00:05:20.000
Project manager: Thanks everyone, that is all for today.
"""


def _git(repo: Path, *args: str, day: int = 1) -> None:
    when = f"2025-03-{day:02d}T10:00:00Z"
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org",
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def make_repo(root: Path) -> Path:
    repo = root / "jobs"
    (repo / "jobs").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text(README)
    (repo / "jobs" / "retry.py").write_text(RETRY_V1)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "Add the job scheduler's retry policy")
    (repo / "jobs" / "retry.py").write_text(RETRY_V2)
    _git(repo, "commit", "-q", "-am", "Double the retry delay for each later retry\n\nAgreed in meeting IS1001a.", day=2)
    _git(repo, "remote", "add", "origin", REMOTE)
    return repo


LONG_MEETING = "IS1001b"
_TOPICS = ("the colour of failed jobs", "the layout of the queue table", "the size of the retry button",
           "the wording of the email", "the order of the columns", "the icons for each state")


def _long_vtt(minutes: int = 24) -> str:
    """A long meeting: enough text that summarising it takes several parts."""
    cues = []
    for i in range(minutes * 2):
        t = i * 30
        topic = _TOPICS[i % len(_TOPICS)]
        cues.append(f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000 --> {(t + 30) // 3600:02d}:{(t + 30) // 60 % 60:02d}:{(t + 30) % 60:02d}.000\n"
                    f"Designer: About {topic}, option {i} keeps the dashboard readable for the operators, "
                    f"and we compare it with the previous sketch before the team votes on it next week.")
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def make_meetings(root: Path, recording: str = RECORDING, *, long: bool = False) -> Path:
    """The meeting IS1001a (and, with `long`, the long meeting IS1001b) in a folder."""
    folder = root / "meetings"
    folder.mkdir(parents=True)
    (folder / f"{MEETING}.vtt").write_text(VTT)
    (folder / f"{MEETING}.yaml").write_text(f"title: {MEETING}\nurl: {recording}\n")
    if long:
        (folder / f"{LONG_MEETING}.vtt").write_text(_long_vtt())
    return folder


def ingest(settings: Settings, paths: list[Path], *, index: bool = False) -> None:
    """Ingest into the settings' store; `index`: also embed (needed for retrieval)."""
    if index:
        from lorebase.services import Services

        svc = Services.build(settings)
        try:
            report = svc.ingest.ingest([str(p) for p in paths])
        finally:
            svc.store.close()
    else:
        settings.ensure_home()
        store = Store(settings.db_url)
        try:
            report = IngestService(settings, store, progress=False).ingest([str(p) for p in paths])
        finally:
            store.close()
    assert report.ok, report.errors
