"""`lorebase serve`: the API (and the model server it needs) on settings.server.host:port.

The URL is printed once the service answers (the generator has given a first answer), not when the
port opens: a user or script that waits for it can use every endpoint at once. Until then a line per
loading step says what is happening; `/healthz` says the same.
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default: server.host); non-loopback needs server.api_keys")
    p.add_argument("--port", type=int, help="port (default: server.port)")


class _HideEarlyURL(logging.Filter):
    """uvicorn announces its URL when the port opens; ours comes when the service is ready."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Uvicorn running on")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lorebase.api.app import create_app
    from lorebase.cpu_budget import apply_to_api_process
    from lorebase.services import Services
    from lorebase.settings import load_settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings()
    if overrides:
        settings = load_settings(server={**settings.server.model_dump(), **overrides})
    settings.ensure_home()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.error").addFilter(_HideEarlyURL())
    budget = apply_to_api_process(settings)  # before torch and FAISS load: their pools take the size now
    logging.getLogger("lorebase.cpu_budget").info("CPU budget: %s", budget.describe())
    base = f"http://{settings.server.host}:{settings.server.port}"

    def progress(part: str, detail: str) -> None:
        if detail != "ready":
            print(f"lorebase: starting: {part}: {detail}", file=sys.stderr, flush=True)

    def ready(svc: Services) -> None:
        if svc.readiness.status == "ok":
            print(f"lorebase API: {base}/v1  (OpenAI-compatible; chat UI {base}/chat; health {base}/healthz)", flush=True)
        else:
            why = "; ".join(f"{k}: {v}" for k, v in svc.readiness.failed().items())
            print(f"lorebase API: {base}/v1  DEGRADED, answers unavailable ({why}); search and ingest work", flush=True)

    print(f"lorebase: starting on {settings.server.host}:{settings.server.port}; the URL follows once the model answers", file=sys.stderr, flush=True)
    app = create_app(settings, on_ready=ready, on_progress=progress)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=settings.log_level.lower())
    return 0
