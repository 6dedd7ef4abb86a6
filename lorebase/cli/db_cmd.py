"""`lorebase db upgrade|current`."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("upgrade", help="migrate the database to the newest schema (also done at every start)")
    sub.add_parser("current", help="print the schema revision of the database")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.scaffold import opened_store

    with opened_store(upgrade=args.action == "upgrade") as (settings, store):
        print(f"{store.revision() or '(empty)'}  {settings.db_url}")
    return 0
