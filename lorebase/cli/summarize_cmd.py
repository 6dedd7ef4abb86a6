"""`lorebase summarize SOURCE [--json]`: bullet points with [mm:ss] or source citations."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorebase.generation.summarize import SummaryProgress

HELP = """SOURCE is a lecture title or source id, a commit range REPO:OLD..NEW, an issue or PR as
'#N' (with --repo when several repos have it), or several source ids."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = HELP
    p.add_argument("source", nargs="+", metavar="SOURCE")
    p.add_argument("--repo", help="the repo of an issue or PR number")
    p.add_argument("--model", help="an adapter name, or the base model's name (default: the promoted adapter, else the base model)")
    p.add_argument("--json", action="store_true")


def target_args(sources: list[str], repo: str | None) -> dict[str, object]:
    """Map SOURCE words to SummaryService.target's keywords."""
    import re

    if len(sources) > 1:
        return {"source_ids": sources}
    s = sources[0]
    if re.fullmatch(r"#?\d+", s):
        return {"number": int(s.lstrip("#")), "repo": repo}
    if ".." in s and ":" in s:
        return {"commit_range": s}
    if s.startswith("src_"):
        return {"source_ids": [s]}
    return {"lecture": s}


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[SummaryProgress], None]]:
    """A bar of the summary's generation calls on stderr (a terminal only); its total grows when merges are added."""
    import sys

    from tqdm import tqdm

    bar = tqdm(desc=f"summarising {title[:40]}", unit=" calls", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)

    def update(p: SummaryProgress) -> None:
        bar.total = max(p.total, p.done)
        bar.set_postfix_str(p.stage, refresh=False)
        bar.n = p.done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    import asyncio

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import running_services
    from lorebase.generation.summary_targets import find_target

    async def go() -> int:
        async with running_services(generator=False) as svc:
            # An unknown source is reported before the model starts (a vLLM server takes half a minute).
            target = find_target(svc.store, **target_args(args.source, args.repo))  # type: ignore[arg-type]
            await svc.start_generator()
            adapter = await svc.conversation.resolve_model(args.model)
            with progress_bar(target.title) as progress:
                s = await svc.conversation.engine().summaries.summarize(target, model=adapter, progress=progress)
        if args.json:
            print_json({"title": s.title, "summary": s.text, "sources": [c.model_dump() for c in s.sources],
                        "input_chars": s.input_chars, "output_chars": len(s.text), "model": s.model})
        else:
            print(f"{s.title}\n\n{s.text}")
        return 0

    return asyncio.run(go())
