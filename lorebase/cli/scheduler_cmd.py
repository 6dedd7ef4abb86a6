"""`lorebase scheduler run`: run the scheduled jobs in this process until interrupted (the same
scheduler `lorebase serve` runs when scheduler.enabled is set). One process runs them per database;
a second one stands by and takes over when the first stops or dies (on any host, with PostgreSQL)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("run", help="run the scheduled jobs here until Ctrl-C or SIGTERM (or stand by while another process runs them)")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from lorebase.cli.scaffold import opened_store
    from lorebase.scheduler.service import SchedulerService, lazy_context

    def standing_by(why: str) -> None:
        print(f"standing by: {why}; taking over when it stops", flush=True)

    with opened_store() as (settings, store):
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        service = SchedulerService(settings, store, context=lazy_context(settings, store))
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if not service.start_when_free(stop, settings.scheduler.standby_poll_s, on_wait=standing_by):
            return 0
        try:
            scheduled = ", ".join(f"{j['id']} ({j['schedule']})" for j in service.jobs() if j["schedule"])
            print(f"scheduler running for {settings.home}: {scheduled or 'no scheduled jobs'}", flush=True)
            stop.wait()
            print("stopping: a job that is running finishes first (Ctrl-C again to cut it short)", flush=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
        finally:
            service.shutdown(wait=True)
    return 0
