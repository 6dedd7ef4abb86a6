"""`lorebase embedder tune|list|use NAME`: an embedder tuned on the corpus's own QA pairs.

`tune` trains a candidate from the embedder in use, gates it on the pairs of held-out sources and,
when it passes, re-embeds every chunk and swaps the index (running servers follow on their next
search). `use configured` goes back to models.embedder the same way."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = sub.add_parser("tune", help="train a candidate on the QA pairs, gate it on held-out sources, swap it in if it wins")
    t.add_argument("--no-promote", action="store_true", help="record the gate's verdict only; keep the index as it is")
    t.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="tuned embedders in the data home with their gate results, and the one in use")
    ls.add_argument("--json", action="store_true")
    u = sub.add_parser("use", help="re-embed with a tuned embedder NAME (or 'configured') and swap the index")
    u.add_argument("name")


def run(args: argparse.Namespace) -> int:
    import sys

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import built_services, settings_of
    from lorebase.finetune.embedder_tuning import list_tuned, tune, use_tuned

    settings = settings_of()
    import logging

    # Training reports its loss every few steps at INFO: the progress of a long run.
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(message)s")  # to stderr, beside --json
    if args.action == "list":
        from lorebase.index.embeddings import active_embedder

        _, in_use, _ = active_embedder(settings)
        rows = list_tuned(settings)
        if args.json:
            print_json({"in_use": in_use, "tuned": rows})
            return 0
        print(f"in use: {in_use}")
        for r in rows:
            v = r["verdict"]
            print(f"{r['name']}: {'promoted' if r['promoted'] else 'not promoted'}, MRR@10 {v['current']['mrr']:.3f} -> "
                  f"{v['candidate']['mrr']:.3f} on {r['held_out_pairs']} held-out pairs, {r['train_pairs']} train pairs")
        return 0

    with built_services(settings, progress=sys.stderr.isatty()) as svc:
        if args.action == "use":
            n = use_tuned(settings, svc.indexer, args.name)
            print(f"re-embedded {n} chunks with {svc.indexer.embedder.model_name}; the index was swapped")
            return 0
        result = tune(settings, svc.store, svc.indexer, svc.search.bm25, promote=not args.no_promote)
    if args.json:
        print_json(result.as_dict())
    else:
        v = result.verdict
        print(f"{result.name}: {result.train_pairs} train pairs ({result.hard_negatives} with a BM25 hard negative), "
              f"{result.train_seconds:.0f} s; gate on {result.held_out_pairs} held-out pairs: {v['reason']}")
        print("promoted: the index was re-embedded and swapped" if result.promoted else "not promoted: the index is unchanged")
    return 0
