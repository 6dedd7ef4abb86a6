"""`lorebase ask "question" [--json]`: a grounded answer with citations."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")
    p.add_argument("-k", "--top-k", type=int, help="sources to retrieve (default: retrieval.top_k)")
    p.add_argument("--kind", action="append", help="only sources of this kind (repeatable)")
    p.add_argument("--model", help="an adapter name, or the base model's name (default: the promoted adapter, else the base model)")
    p.add_argument("--json", action="store_true", help="print JSON: answer, sources, check, usage")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import running_services
    from lorebase.errors import InvalidInput
    from lorebase.generation.conversation import ConversationRequest

    if not args.question.strip():  # before loading anything: the model may take a while to start
        raise InvalidInput("the question is empty")

    async def go() -> int:
        filters = {"kind": args.kind} if args.kind else None
        async with running_services() as svc:
            a = await svc.conversation.complete(
                ConversationRequest.ask(args.question, top_k=args.top_k, filters=filters, model=args.model))
        if args.json:
            print_json({"answer": a.text, "sources": [c.model_dump() for c in a.sources], "verdict": a.verdict.model_dump(mode="json"),
                        "usage": a.usage.__dict__, "model": a.model})
        else:
            print(a.text)
            if a.sources:
                print()
                for c in a.sources:
                    print(f"[{c.id}] {c.label}  {c.uri or ''}")
        return 0

    return asyncio.run(go())
