"""`lorebase models prepare|list`."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    prep = sub.add_parser("prepare", help="make the configured models usable offline (converts the GGUF generator and joins the Whisper model once)")
    prep.add_argument("--force", action="store_true", help="redo the conversion even if it exists")
    lst = sub.add_parser("list", help="show what each model role resolves to")
    lst.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from lorebase import offline_models
    from lorebase.cli.main import print_json
    from lorebase.settings import load_settings

    settings = load_settings()
    if args.action == "prepare":
        infos = offline_models.prepare(settings, force=args.force)
    else:
        infos = offline_models.available(settings)
    if getattr(args, "json", False):
        print_json([{"role": i.role, "name": i.name, "path": str(i.path) if i.path else None, "ready": i.ready, "detail": i.detail} for i in infos])
    else:
        for i in infos:
            state = "ready  " if i.ready else "MISSING"
            where = "  ".join(x for x in (str(i.path) if i.path else "", i.detail) if x)
            print(f"{i.role:<13} {state} {i.name}\n{'':14}{where}".rstrip())
    return 0 if all(i.ready for i in infos) else 1
