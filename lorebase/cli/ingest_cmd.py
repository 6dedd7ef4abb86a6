"""`lorebase ingest SOURCE... [--json]`."""

from __future__ import annotations

import argparse

HELP = """SOURCE is a transcript file or folder (.vtt .srt .txt .json), a git work tree, a clone URL,
github:OWNER/REPO (issues and PRs through the API; token from $GITHUB_TOKEN), or a JSON export of
issues/PRs (GitHub REST or gh CLI). Re-running is incremental: unchanged sources are not touched."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = HELP
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")


def run(args: argparse.Namespace) -> int:
    import logging

    from lorebase.cli.main import print_json
    from lorebase.ingest.service import IngestService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    settings = load_settings()
    settings.ensure_home()
    logging.basicConfig(level=settings.log_level if not args.json else "WARNING", format="%(levelname)s %(message)s")
    store = Store(settings.db_url)
    report = IngestService(settings, store).ingest(args.sources)
    if args.json:
        print_json(report.as_dict())
    else:
        r = report
        print(f"ingest run {r.run_id}: {r.status} — {r.added} added, {r.updated} updated, {r.unchanged} unchanged, "
              f"{r.removed} removed, {r.skipped} skipped, {r.failed} failed; chunks +{r.chunks_added} -{r.chunks_removed}")
        for e in r.errors:
            print(f"  error {e['source']}: {e['reason']}")
    return 0 if report.ok else 1
