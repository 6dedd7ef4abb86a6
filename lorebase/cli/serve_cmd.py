"""`lorebase serve`: the API (and the model server it needs) on settings.server.host:port."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default: server.host); non-loopback needs server.api_keys")
    p.add_argument("--port", type=int, help="port (default: server.port)")


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from lorebase.api.app import create_app
    from lorebase.settings import load_settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings()
    if overrides:
        settings = load_settings(server={**settings.server.model_dump(), **overrides})
    settings.ensure_home()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    base = f"http://{settings.server.host}:{settings.server.port}"
    print(f"lorebase API: {base}/v1  (OpenAI-compatible; health {base}/healthz)", flush=True)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=settings.log_level.lower())
    return 0
