"""`lorebase search "query" [-k 5] [--kind K ...] [--repo R] [--path-prefix P] [--lecture L] [--since D] [--until D]
[--mode hybrid|dense|bm25] [--neighbors N] [--json]`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="what to look for")
    p.add_argument("-k", type=int, default=None, help="how many results (1-100; default retrieval.top_k)")
    p.add_argument("--kind", action="append", help="only this source kind (repeatable): transcript, code, doc, commit, issue, pull_request")
    p.add_argument("--repo", action="append", help="only this repository, owner/name (repeatable)")
    p.add_argument("--path-prefix", help="only files whose path starts with this")
    p.add_argument("--lecture", action="append", help="only this lecture (repeatable)")
    p.add_argument("--since", help="only sources authored on or after this date (YYYY-MM-DD or ISO datetime)")
    p.add_argument("--until", help="only sources authored on or before this date")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help="retriever (default hybrid)")
    p.add_argument("--neighbors", type=int, default=0, help="widen each result by this many adjacent chunks per side")
    p.add_argument("--no-sync", action="store_true", help="do not index pending chunks first")
    p.add_argument("--json", action="store_true", help="print the citations as JSON")


def filters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    raw = {
        "kind": args.kind,
        "repo": args.repo,
        "path_prefix": args.path_prefix,
        "lecture": args.lecture,
        "since": args.since,
        "until": args.until,
    }
    return {k: v for k, v in raw.items() if v}


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.index.search import SearchService

    with opened_store() as (settings, store):
        service = SearchService(settings, store)
        if args.mode != "bm25" and not args.no_sync:
            from lorebase.index.sync import IndexSyncer

            IndexSyncer(settings, store, service.embedder, service.dense, progress=sys.stderr.isatty()).sync()
        citations = service.search(args.query, k=args.k, filters=filters_from_args(args), mode=args.mode, neighbors=args.neighbors)
    if args.json:
        print_json([c.model_dump(mode="json") for c in citations])
        return 0
    if not citations:
        print("no results")
        return 0
    for c in citations:
        score = f"{c.score:.4f}" if c.score is not None else "-"
        print(f"[{c.id}] {score}  {c.label}  ({c.kind})")
        if c.uri:
            print(f"     {c.uri}")
        snippet = " ".join(c.snippet.split())
        print(f"     {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    return 0
