"""`lorebase qa generate|stats|export`: the QA-pair dataset made from the store."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = sub.add_parser("generate", help="make pairs for new and changed sources; retire pairs of deleted ones")
    llm = g.add_mutually_exclusive_group()
    llm.add_argument("--self-instruct", dest="self_instruct", action="store_true", default=None,
                     help="also have the generator write questions (default: qa.self_instruct)")
    llm.add_argument("--no-self-instruct", dest="self_instruct", action="store_false")
    g.add_argument("--kind", action="append", dest="kinds", metavar="KIND",
                   help="only sources of this kind (repeatable; default: qa.kinds)")
    g.add_argument("--rebuild", action="store_true",
                   help="retire every generated pair and make all anew (e.g. after turning self-instruct on)")
    g.add_argument("--json", action="store_true", help="print the run report as JSON")

    st = sub.add_parser("stats", help="counts by split, kind, method and category")
    st.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="write the pairs as JSONL or as a Hugging Face datasets folder")
    ex.add_argument("out", type=Path, help="a .jsonl file, or a folder for --format datasets")
    ex.add_argument("--format", choices=("jsonl", "datasets"), default=None,
                    help="default: jsonl for a .jsonl path, else datasets")
    ex.add_argument("--split", choices=("train", "validation", "test"), help="only this split")
    ex.add_argument("--include-retired", action="store_true", help="also pairs whose source changed or went")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.scaffold import opened_store, settings_of

    settings = settings_of()
    if args.action == "generate":
        return _generate(args, settings)
    from lorebase.cli.main import print_json
    from lorebase.finetune.export import export_dataset, export_jsonl, load_pairs, stats

    with opened_store(settings) as (settings, store):
        if args.action == "stats":
            data = stats(store)
            if args.json:
                print_json(data)
            else:
                print(f"{data['active']} active pairs ({data['retired']} retired, {data['unvalidated']} unvalidated)")
                for key in ("by_split", "by_kind", "by_method", "by_category"):
                    print(f"  {key[3:]}: " + ", ".join(f"{k} {v}" for k, v in data[key].items()))
            return 0
        pairs = load_pairs(store, split=args.split, include_retired=args.include_retired)
        fmt = args.format or ("jsonl" if args.out.suffix == ".jsonl" else "datasets")
        if fmt == "jsonl":
            n = export_jsonl(pairs, args.out)
            print(f"wrote {n} pairs to {args.out}")
        else:
            counts = export_dataset(pairs, args.out, source=f"the store at {settings.db_url}")
            print(f"wrote a datasets folder to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0


def _generate(args: argparse.Namespace, settings: object) -> int:
    import asyncio
    import logging
    import sys

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import running_services
    from lorebase.finetune.qa_generation import QAGenerator
    from lorebase.finetune.retrieval import retriever
    from lorebase.settings import Settings

    assert isinstance(settings, Settings)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(message)s")
    use_llm = settings.qa.self_instruct if args.self_instruct is None else args.self_instruct

    async def go() -> int:
        async with running_services(settings, generator=False, load_adapters=False) as svc:
            writer = own = None
            if use_llm:  # the strongest generator prepared writes the pairs (finetune.pair_writer)
                from lorebase.finetune.pair_writer import open_pair_writer

                writer, opened = await open_pair_writer(settings, None)
                own = writer if opened else None
            try:
                gen = QAGenerator(settings, svc.store, embed=svc.search.embedder.embed, retrieve=retriever(svc.search),
                                  generator=writer, progress=sys.stderr.isatty())
                report = await gen.generate(self_instruct=use_llm, kinds=args.kinds, rebuild=args.rebuild)
            finally:
                if own is not None:
                    await own.aclose()
        if args.json:
            print_json(report.as_dict())
        else:
            r = report
            print(f"qa generate: {r.added} pairs added ({', '.join(f'{k} {v}' for k, v in r.by_method.items()) or 'none'}); "
                  f"{r.regenerated} sources made, {r.unchanged} current, {r.retired} pairs retired "
                  f"({r.gone} sources gone); {r.duplicates} near-duplicates and {r.rejected} unsupported dropped")
            print("  splits: " + (", ".join(f"{k} {v}" for k, v in r.by_split.items()) or "none"))
        return 0

    return asyncio.run(go())
