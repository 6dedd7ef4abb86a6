"""`lorebase feedback list|review|harvest`: the review queue of rated answers, and the QA pairs made from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="rated answers by review status (default: thumbs-down waiting for review)")
    ls.add_argument("--status", choices=("pending", "accepted", "rejected", "all"), default="pending")
    ls.add_argument("--rating", choices=("down", "up", "all"), default="down")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (1-500)")
    ls.add_argument("--json", action="store_true")

    rv = sub.add_parser("review", help="accept a rated answer with a correction (it becomes a QA pair), or reject it")
    rv.add_argument("id", type=int, help="the feedback id (from `lorebase feedback list`)")
    what = rv.add_mutually_exclusive_group(required=True)
    what.add_argument("--accept", action="store_true", help="accept with --correction or --correction-file")
    what.add_argument("--reject", action="store_true")
    text = rv.add_mutually_exclusive_group()
    text.add_argument("--correction", metavar="TEXT", help="the answer the model should have given; cite shown sources as [S1]")
    text.add_argument("--correction-file", type=Path, metavar="FILE", help="read the correction from FILE ('-': stdin)")
    rv.add_argument("--reviewer", help="who reviews (default: the login name)")
    rv.add_argument("--note", help="a remark kept with the review")
    rv.add_argument("--json", action="store_true")

    hv = sub.add_parser("harvest", help="thumbs-up answers that pass the support check become QA pairs; the rest are rejected")
    hv.add_argument("--limit", type=int, default=None, help="examine at most this many")
    hv.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.feedback.review import FeedbackReview

    with opened_store() as (settings, store):
        review = FeedbackReview(settings, store)
        if args.action == "list":
            items = review.list_queue(args.status, args.rating, args.limit)
            if args.json:
                print_json(items)
            else:
                _print_list(items, args.status, args.rating)
            return 0
        if args.action == "review":
            correction = _read_correction(args)
            if args.accept and correction is None:
                from lorebase.errors import InvalidInput

                raise InvalidInput("--accept needs --correction TEXT or --correction-file FILE")
            result = review.review(args.id, "accept" if args.accept else "reject", correction,
                                   reviewer=args.reviewer or _login(), note=args.note)
            if args.json:
                print_json(result)
            else:
                pair = result["qa_pair"]
                if pair is None:
                    print(f"feedback {args.id}: rejected")
                else:
                    print(f"feedback {args.id}: accepted; QA pair {pair['id']} ({pair['split']}, "
                          f"{len(pair['chunk_ids'])} gold chunk(s), {pair['category']})")
            return 0
        report = review.harvest_positive(args.limit)
        if args.json:
            print_json(report.as_dict())
        else:
            print(f"feedback harvest: {report.examined} thumbs-up examined, {report.added} became QA pairs, "
                  f"{report.rejected} rejected")
            for reason, n in report.reasons.most_common(10):
                print(f"  {n} x {reason}")
        return 0


def _read_correction(args: argparse.Namespace) -> str | None:
    path: Path | None = args.correction_file
    if path is None:
        return str(args.correction) if args.correction is not None else None
    if str(path) == "-":
        import sys

        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        from lorebase.errors import InvalidInput

        raise InvalidInput(f"cannot read the correction from {args.correction_file}: {e}") from e


def _login() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return None


def _print_list(items: list[dict[str, Any]], status: str, rating: str) -> None:
    if not items:
        print(f"no feedback (status {status}, rating {rating})")
        return
    for f in items:
        thumb = "up" if f["rating"] > 0 else "down"
        print(f"#{f['id']}  {f['created_at'][:19] if f['created_at'] else ''}  {thumb}  {f['review_status']}  "
              f"{f['adapter'] or f['model']}  via {f['channel']}")
        print(f"  Q: {_one_line(f['question'])}")
        print(f"  A: {_one_line(f['answer'])}")
        if f["comment"]:
            print(f"  comment: {_one_line(f['comment'])}")
        labels = [f"{s.get('id', '?')} {s.get('title', '')}".strip() for s in f["sources"] if isinstance(s, dict)]
        if labels:
            print(f"  sources: {'; '.join(labels)}")
        if f["correction"]:
            print(f"  correction: {_one_line(f['correction'])}")
        if f["review"]:
            outcome = f["review"].get("qa_pair_id") or f["review"].get("reason")
            if outcome:
                print(f"  outcome: {'QA pair ' + str(outcome) if isinstance(outcome, int) else outcome}")


def _one_line(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
