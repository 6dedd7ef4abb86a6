"""Entry point of the `lorebase` console script."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from lorebase import __version__
from lorebase.errors import LorebaseError

# (command, module, help). Each module defines add_arguments(parser) and run(args) -> int.
COMMANDS: list[tuple[str, str, str]] = [
    ("models", "lorebase.cli.models_cmd", "prepare and list the offline models"),
    ("db", "lorebase.cli.db_cmd", "database schema: upgrade, show the revision"),
    ("config", "lorebase.cli.config_cmd", "show the effective settings (secrets masked)"),
    ("ingest", "lorebase.cli.ingest_cmd", "ingest transcripts, recordings, repositories, issues and PRs (incremental)"),
    ("serve", "lorebase.cli.serve_cmd", "serve the API and chat UI (starts the model server too)"),
    ("ask", "lorebase.cli.ask_cmd", "answer a question from the sources, with citations"),
    ("summarize", "lorebase.cli.summarize_cmd", "summarise a lecture, a commit range, an issue/PR or chosen sources"),
    ("search", "lorebase.cli.search_cmd", "search the indexed sources: hybrid, dense or BM25, with filters"),
    ("index", "lorebase.cli.index_cmd", "the dense index: sync, rebuild, status"),
    ("eval", "lorebase.cli.eval_cmd", "evaluate answers and retrieval (RAGAS, hit@k, ROUGE), list and compare runs"),
    ("qa", "lorebase.cli.qa_cmd", "QA-pair dataset from the store: generate (incremental), stats, export"),
    ("train", "lorebase.cli.train_cmd", "fine-tune a LoRA adapter on the QA pairs, gate it, promote it"),
    ("adapters", "lorebase.cli.adapters_cmd", "fine-tuned adapters: list, promote, rollback, gate"),
    ("embedder", "lorebase.cli.embedder_cmd", "tune the embedder on the QA pairs, gate it, swap the index; list, use"),
    ("jobs", "lorebase.cli.jobs_cmd", "scheduled jobs: list, run one now, pause, resume, history, tracked sources"),
    ("scheduler", "lorebase.cli.scheduler_cmd", "run the scheduled sync, ingest, QA, retraining and evaluation jobs"),
    ("feedback", "lorebase.cli.feedback_cmd", "rated answers: the review queue, corrections and thumbs-up into QA pairs"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorebase",
        description="Question answering over courses and codebases, with traceable citations.",
    )
    parser.add_argument("--version", action="version", version=f"lorebase {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except LorebaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
