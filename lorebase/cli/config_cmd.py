"""`lorebase config`: the effective settings after YAML and environment."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (default is YAML)")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.settings import load_settings

    data = load_settings().redacted()
    if args.json:
        print_json(data)
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False).rstrip())
    return 0
