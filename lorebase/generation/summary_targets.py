"""What a summary covers: a lecture (by id, title or file name), a commit range, an issue or pull
request thread, or chosen sources. Needs only the store, so a command can check its target before
starting a model."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from lorebase.errors import InvalidInput, NotFound
from lorebase.store import Store
from lorebase.store.models import Source

_RANGE = re.compile(r"^(?P<repo>[^:\s]+):(?P<old>[0-9a-fA-F]{4,40})\.\.(?P<new>[0-9a-fA-F]{4,40})$")


@dataclass
class SummaryTarget:
    title: str
    sources: list[Source]


def find_target(
    store: Store,
    *,
    source_ids: Sequence[str] | None = None,
    lecture: str | None = None,
    commit_range: str | None = None,
    number: int | None = None,
    repo: str | None = None,
) -> SummaryTarget:
    """What to summarise. It needs only the store, so a command can check it before starting the model."""
    chosen = [x for x in (source_ids, lecture, commit_range, number) if x]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of: source_ids, lecture, commit_range, number")
    with store.session() as s:
        if source_ids:
            found = {src.id: src for src in s.scalars(select(Source).where(Source.id.in_(list(source_ids))))}
            missing = [i for i in source_ids if i not in found]
            if missing:
                raise NotFound(f"no such source: {', '.join(missing)}")
            srcs = [found[i] for i in source_ids]
            title = srcs[0].title if len(srcs) == 1 else f"{len(srcs)} sources"
        elif lecture:
            srcs = _lectures(s, lecture)
            if not srcs:
                raise NotFound(f"no lecture titled or identified {lecture!r}")
            title = srcs[0].title
        elif commit_range:
            srcs, title = _commit_range(s, commit_range)
        else:
            q = select(Source).where(Source.number == number, Source.kind.in_(("issue", "pull_request")))
            if repo:
                q = q.where(Source.repo == repo)
            srcs = list(s.scalars(q))
            if not srcs:
                raise NotFound(f"no issue or pull request #{number}" + (f" in {repo}" if repo else ""))
            if len(srcs) > 1:
                raise InvalidInput(f"#{number} exists in several repos ({', '.join(sorted(x.repo or '?' for x in srcs))}): give repo")
            title = srcs[0].title
        for src in srcs:
            _ = src.chunks  # load while the session is open
    return SummaryTarget(title, srcs)


def _commit_range(s: object, spec: str) -> tuple[list[Source], str]:
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    m = _RANGE.match(spec.strip())
    if not m:
        raise InvalidInput(f"commit range {spec!r}: expected REPO:OLD..NEW with commit shas")
    repo, old, new = m["repo"], m["old"].lower(), m["new"].lower()
    commits = list(s.scalars(select(Source).where(Source.kind == "commit", Source.repo == repo)))
    ends = {}
    for name, prefix in (("old", old), ("new", new)):
        hits = [c for c in commits if c.commit and c.commit.startswith(prefix)]
        if len(hits) != 1:
            raise NotFound(f"commit {prefix} is {'ambiguous' if hits else 'not ingested'} in {repo}")
        ends[name] = hits[0]
    lo, hi = ends["old"].authored_at, ends["new"].authored_at
    if lo is None or hi is None or lo > hi:
        raise InvalidInput(f"{spec}: OLD must come before NEW")
    # (OLD, NEW] like git's OLD..NEW, ordered by author date
    chosen = sorted((c for c in commits if c.authored_at and lo < c.authored_at <= hi and c.id != ends["old"].id),
                    key=lambda c: c.authored_at or lo)
    return chosen, f"commits {old[:7]}..{new[:7]} in {repo}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _lectures(s: object, lecture: str) -> list[Source]:
    """A lecture by id, key, lecture id or title, or by a name that differs only in case, spaces,
    underscores and a file extension: `education_4`, `education_4.srt` and "Education 4" are one."""
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    exact = list(s.scalars(select(Source).where(
        Source.kind == "transcript",
        (Source.id == lecture) | (Source.lecture == lecture) | (Source.key == lecture) | (Source.title == lecture))))
    if exact:
        return exact
    want = _slug(re.sub(r"\.(srt|vtt|txt|json|md|mp3|mp4|wav|webm|m4a)$", "", lecture.strip(), flags=re.I))
    if not want:
        return []
    rows = s.execute(select(Source.id, Source.title, Source.lecture, Source.key, Source.path).where(Source.kind == "transcript"))
    ids = [r.id for r in rows if want in {_slug(x) for x in (r.title, r.lecture, r.key, Path(r.path).stem if r.path else None) if x}
           or want == _slug(Path((r.key or "").rsplit(":", 1)[-1]).name)]
    return list(s.scalars(select(Source).where(Source.id.in_(ids)))) if ids else []
