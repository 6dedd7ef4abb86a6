"""`lorebase index sync|rebuild|status`."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("sync", help="embed pending chunks and apply deletions to the dense index")
    rb = sub.add_parser("rebuild", help="re-embed every chunk into a new index, then swap it in (after an embedder change)")
    rb.add_argument("--configured", action="store_true",
                    help="embed with the configured embedder (models.embedder), leaving a tuned one the index was swapped to")
    st = sub.add_parser("status", help="show the index: count, embedder, dim, type, pending chunks")
    st.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.index.sync import IndexSyncer

    with opened_store() as (settings, store):
        configured = args.action == "rebuild" and args.configured
        embedder = LorebaseEmbedding.configured(settings) if configured else LorebaseEmbedding.from_settings(settings)
        syncer = IndexSyncer(settings, store, embedder, progress=sys.stderr.isatty())
        if args.action == "rebuild":
            r = syncer.rebuild()
            print(f"rebuilt: {r.total} vectors ({syncer.dense.index_type}) with {syncer.dense.embedder_name}")
            return 0
        reason = syncer.open()
        if reason:
            print(f"the saved index was rebuilt: {reason}", file=sys.stderr)
        if args.action == "sync":
            r = syncer.sync()
            print(f"added {r.added}, removed {r.removed}, total {r.total}")
            return 0
        info = syncer.status()
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:<12} {value}")
    return 0
