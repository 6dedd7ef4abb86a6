"""`lorebase jobs list|run NAME|pause [NAME]|resume [NAME]|history|sources`: the scheduler's jobs
(see docs/scheduler.md). `run` works in the foreground, whether or not a scheduler runs elsewhere."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="jobs, their schedules, next runs and latest runs")
    ls.add_argument("--json", action="store_true")
    r = sub.add_parser("run", help="run a job now in the foreground and print its counts",
                       description="NAME: sync (every tracked source), sync:SOURCE, qa, retrain or eval.")
    r.add_argument("name", metavar="NAME")
    r.add_argument("--json", action="store_true", help="print the outcome as JSON")
    pa = sub.add_parser("pause", help="pause a scheduled job (default: all); it keeps its schedule")
    pa.add_argument("name", nargs="?", metavar="NAME")
    re_ = sub.add_parser("resume", help="resume a paused job (default: all)")
    re_.add_argument("name", nargs="?", metavar="NAME")
    h = sub.add_parser("history", help="job runs, newest first: one row per attempt of each step")
    h.add_argument("--job", help="only this job (sync matches every sync:SOURCE)")
    h.add_argument("--status", choices=("running", "ok", "failed", "skipped", "interrupted"))
    h.add_argument("--limit", type=int, default=30)
    h.add_argument("--json", action="store_true")
    src = sub.add_parser("sources", help="the tracked sources (settings and API)")
    src.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import logging

    from lorebase.cli.scaffold import opened_store, settings_of

    settings = settings_of()
    logging.basicConfig(level="WARNING", format="%(levelname)s %(message)s")
    if args.action == "run":
        return _run(args, settings)
    with opened_store(settings) as (settings, store):
        return {"list": _list, "pause": _pause, "resume": _pause, "history": _history, "sources": _sources}[args.action](
            args, settings, store)


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _run(args: argparse.Namespace, settings: Any) -> int:
    import contextlib

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.scheduler.jobs import JobContext
    from lorebase.scheduler.pipeline import JobRunner
    from lorebase.services import Services

    tty = sys.stderr.isatty()

    def say(msg: str) -> None:
        print(f"[{_stamp()}] {msg}", file=sys.stderr, flush=True)

    built: list[Services] = []

    def services() -> Services:  # built when a step first needs them: a sync with no change never does
        if not built:
            built.append(Services.build(settings, progress=tty))
        return built[0]

    # Training prints log lines on stdout; with --json, stdout carries the JSON alone.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with opened_store(settings) as (_, store):
        try:
            with quiet:
                summary = JobRunner(JobContext(settings, store, services, progress=tty), say=say).run(args.name)
        finally:
            for svc in built:
                svc.store.close()
    if args.json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
    return 0 if summary.ok else 1


def _print_summary(summary: Any) -> None:
    from lorebase.scheduler.pipeline import brief

    print(f"job {summary.job}: {'ok' if summary.ok else 'FAILED'}")
    for s in summary.steps:
        tries = f", {s.attempts} attempts" if s.attempts > 1 else ""
        print(f"  {s.job:24s} {s.status:8s} {s.seconds:7.1f} s{tries}  {brief(s.counts) if s.status == 'ok' else s.error}")
    for note in summary.notes:
        print(f"  {note}")


def _list(args: argparse.Namespace, settings: Any, store: Any) -> int:
    from lorebase.cli.main import print_json
    from lorebase.scheduler.service import SchedulerService

    service = SchedulerService(settings, store)
    try:
        rows = service.jobs()
    finally:
        service.shutdown()
    if args.json:
        print_json(rows)
        return 0
    print(f"{'job':24s} {'schedule':34s} {'next run':20s} last run")
    for r in rows:
        nxt = "paused" if r["paused"] else (r["next_run_time"].strftime("%Y-%m-%d %H:%M:%S") if r["next_run_time"] else "—")
        if r["running"]:
            nxt += " (running)"
        last = r["last_run"]
        seen = f"{last['status']} at {last['started_at']:%Y-%m-%d %H:%M:%S} (run {last['id']})" if last else "never"
        print(f"{r['id']:24s} {r['schedule'] or 'on demand':34s} {nxt:20s} {seen}")
    return 0


def _pause(args: argparse.Namespace, settings: Any, store: Any) -> int:
    from lorebase.scheduler.service import SchedulerService

    service = SchedulerService(settings, store)
    try:
        done = service.pause(args.name) if args.action == "pause" else service.resume(args.name)
    finally:
        service.shutdown()
    verb = "paused" if args.action == "pause" else "resumed"
    print(f"{verb}: {', '.join(done) or 'no scheduled job'}")
    return 0


def _history(args: argparse.Namespace, settings: Any, store: Any) -> int:
    from lorebase.cli.main import print_json
    from lorebase.scheduler import history
    from lorebase.scheduler.pipeline import brief

    if not 1 <= args.limit <= 1000:
        from lorebase.errors import InvalidInput

        raise InvalidInput("--limit must be from 1 to 1000")
    rows = history.runs(store, args.job, args.limit, args.status)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no job runs yet")
    for r in rows:
        took = f"{r['seconds']:.1f} s" if r["seconds"] is not None else "…"
        detail = brief(r["counts"]) if r["status"] == "ok" else (r["error"] or "")
        tries = f" #{r['attempt']}" if r["attempt"] > 1 else ""
        print(f"{r['id']:>6} {r['started_at']:%Y-%m-%d %H:%M:%S} {r['job'] + tries:26s} {r['status']:11s} {took:>9s}  {detail}")
    return 0


def _sources(args: argparse.Namespace, settings: Any, store: Any) -> int:
    from lorebase.cli.main import print_json
    from lorebase.scheduler.tracked import TrackedSources

    found = [t.as_dict() for t in TrackedSources(settings, store).all()]
    if args.json:
        print_json(found)
        return 0
    if not found:
        print("no tracked sources (scheduler.sources in settings, or POST /v1/jobs/sources)")
    for t in found:
        when = f"every {t['interval_s']:g} s" if t["interval_s"] is not None else f"cron {t['cron']}"
        branch = f" (branch {t['branch']})" if t["branch"] else ""
        print(f"{t['name']:20s} {when:22s} {t['origin']:8s} {t['spec']}{branch}")
    return 0
