"""`lorebase adapters list|promote NAME|rollback|gate NAME`: the fine-tuned adapter registry.

A running server picks up a promotion or rollback by itself (it polls the registry every
finetune.adapter_poll_s seconds) and keeps the previous adapter loaded for an instant rollback."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="adapters with status, data hash and gate metrics")
    ls.add_argument("--json", action="store_true")
    pr = sub.add_parser("promote", help="serve NAME by default (the promoted one is kept for rollback)")
    pr.add_argument("name")
    sub.add_parser("rollback", help="take the promoted adapter out of service and restore the one before it")
    g = sub.add_parser("gate", help="compare NAME with the served model on the test split; promote it if it passes")
    g.add_argument("name")
    g.add_argument("--no-promote", action="store_true", help="record the result only")
    g.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store, settings_of
    from lorebase.finetune.registry import Registry

    settings = settings_of()
    if args.action == "gate":
        return _gate(args, settings)
    with opened_store(settings) as (settings, store):
        reg = Registry(store)
        if args.action == "list":
            rows = reg.list()
            if args.json:
                print_json([{"name": a.name, "status": a.status, "path": a.path, "base_model": a.base_model,
                             "data_hash": a.data_hash, "created_at": a.created_at, "promoted_at": a.promoted_at,
                             "metrics": a.metrics} for a in rows])
                return 0
            if not rows:
                print("no adapters yet: `lorebase train` makes one")
            for a in rows:
                gate = (a.metrics.get("gate") or {}).get("metrics", {}).get("candidate", {})
                main = settings.finetune.gate_metric
                shown = f"{main} {gate[main]:.4f}" if isinstance(gate.get(main), float) else "not gated"
                print(f"{a.name:40s} {a.status:9s} data {a.data_hash[:12]}  {shown}  {a.created_at:%Y-%m-%d %H:%M}")
            return 0
        if args.action == "promote":
            a = reg.promote(args.name)
            print(f"{a.name} is promoted; a running server loads it within {settings.finetune.adapter_poll_s:g} s")
            return 0
        out, now = reg.rollback()
        print(f"rolled back {out.name}; now serving {now.name if now is not None else 'the base model'}")
        return 0


def _gate(args: argparse.Namespace, settings: object) -> int:
    import asyncio

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import built_services
    from lorebase.cli.train_cmd import _print_gate
    from lorebase.finetune.gate_run import record, run_gate
    from lorebase.finetune.retrieval import retriever
    from lorebase.settings import Settings

    assert isinstance(settings, Settings)
    with built_services(settings) as svc:
        report = asyncio.run(run_gate(settings, svc.store, retriever(svc.search), svc.search.embedder.embed, args.name,
                                      progress=None if args.json else print))
        promote = settings.finetune.auto_promote and not args.no_promote
        adapter = record(svc.store, report, promote=promote)
    if args.json:
        print_json({**report.summary(), "status": adapter.status})
    else:
        _print_gate(report.summary())
        print(f"{adapter.name} is now {adapter.status}")
    return 0
