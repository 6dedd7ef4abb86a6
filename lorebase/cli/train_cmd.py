"""`lorebase train`: fine-tune a LoRA adapter on the train split, then run the gate against the
served model and promote the adapter if it passes (see docs/finetune.md)."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="adapter name (default: lora-<time>-<data hash>)")
    p.add_argument("--max-examples", type=int, metavar="N", help="training examples at most (default: finetune.max_examples)")
    p.add_argument("--max-steps", type=int, default=-1, metavar="N", help="stop after N optimizer steps (default: the epochs)")
    p.add_argument("--no-gate", action="store_true", help="train only: leave the adapter a candidate")
    promote = p.add_mutually_exclusive_group()
    promote.add_argument("--promote", dest="promote", action="store_true", default=None,
                         help="promote the adapter if it passes the gate (default: finetune.auto_promote)")
    promote.add_argument("--no-promote", dest="promote", action="store_false")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import logging
    import sys

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import built_services

    logging.basicConfig(level="WARNING", format="%(levelname)s %(message)s")
    # The trainer prints its log lines on stdout; with --json, stdout carries the JSON alone.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with built_services() as svc, quiet:
        out = _train_and_gate(args, svc.settings, svc)
    if args.json:
        print_json(out)
    return 0


def _train_and_gate(args: argparse.Namespace, settings: Any, svc: Any) -> dict[str, object]:
    import asyncio
    import sys

    from lorebase.finetune.adapter_training import train_adapter
    from lorebase.finetune.retrieval import retriever

    retrieve = retriever(svc.search)
    outcome = train_adapter(settings, svc.store, retrieve, name=args.name, max_examples=args.max_examples,
                            max_steps=args.max_steps, progress=sys.stderr.isatty(), embed=svc.search.embedder.embed,
                            report=lambda line: print(line, file=sys.stderr, flush=True))
    out: dict[str, object] = {
        "adapter": outcome.adapter.name, "path": outcome.adapter.path, "status": outcome.adapter.status,
        "examples": outcome.examples, "withheld_gold": outcome.withheld, "skipped": outcome.skipped,
        "seconds": outcome.seconds, "steps": outcome.steps, "final_loss": outcome.final_loss, "targets": outcome.targets,
    }
    print(f"trained {outcome.adapter.name} on {outcome.examples} examples in {outcome.seconds:.0f} s "
          f"({outcome.steps} steps, final loss {outcome.final_loss}); saved to {outcome.adapter.path}")
    if args.no_gate:
        return out
    from lorebase.finetune.gate_run import record, run_gate

    promote = settings.finetune.auto_promote if args.promote is None else args.promote
    report = asyncio.run(run_gate(settings, svc.store, retrieve, svc.search.embedder.embed, outcome.adapter.name,
                                  progress=print))
    adapter = record(svc.store, report, promote=promote)
    out["gate"] = report.summary()
    out["status"] = adapter.status
    _print_gate(report.summary())
    print(f"{adapter.name} is now {adapter.status}")
    return out


def _print_gate(summary: dict[str, object]) -> None:
    metrics = summary["metrics"]
    assert isinstance(metrics, dict)
    print(f"gate on {summary['examples']} test examples: candidate vs {summary['current']} "
          f"(faithfulness: {summary['faithfulness_method']})")
    ci = summary.get("ci95") or {}
    assert isinstance(ci, dict)
    for name, value in metrics["candidate"].items():
        cur = metrics["current"].get(name)
        band = f"  (95% interval of the change {ci[name][0]:+.3f} … {ci[name][1]:+.3f})" if ci.get(name) else ""
        print(f"  {name:24s} {_fmt(cur)} -> {_fmt(value)}{band}")
    decision = summary["decision"]
    assert isinstance(decision, dict)
    print(("PASSED: " if decision["passed"] else "FAILED: ") + "; ".join(decision["reasons"]))


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "—"
