"""`lorebase ingest SOURCE... [--json]`."""

from __future__ import annotations

import argparse

HELP = """SOURCE is a transcript file or folder (.vtt .srt .txt .json), a lecture recording or a folder of
them (.wav .mp3 .m4a .flac .ogg .mp4 .webm .mkv .mov; transcribed offline with Whisper, or an http(s)
URL of one), a git work tree, a clone URL, github:OWNER/REPO (issues and PRs through the API; token
from $GITHUB_TOKEN), or a JSON export of issues/PRs (GitHub REST or gh CLI). Re-running is
incremental: unchanged sources are not touched, and a recording is never transcribed twice."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = HELP
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import built_services, settings_of

    settings = settings_of()
    logging.basicConfig(level="WARNING" if args.json else settings.log_level, format="%(levelname)s %(message)s")
    with built_services(settings, progress=sys.stderr.isatty()) as svc:
        report = svc.ingest.ingest(args.sources)
    if args.json:
        print_json(report.as_dict())
    else:
        r = report
        print(f"ingest run {r.run_id}: {r.status} — {r.added} added, {r.updated} updated, {r.unchanged} unchanged, "
              f"{r.removed} removed, {r.skipped} skipped, {r.failed} failed; chunks +{r.chunks_added} -{r.chunks_removed}")
        for e in r.errors:
            print(f"  error {e['source']}: {e['reason']}")
    return 0 if report.ok else 1
