"""Mounting the Chainlit chat UI in the API's FastAPI app, at /chat.

Chainlit is one app per process (its server, config and data layer are module-level), so the
first mount uses Chainlit's own `mount_chainlit`, and a later app in the same process (tests)
mounts the same, already configured Chainlit app again. Nothing here imports chainlit until a
mount is asked for, so `lorebase --help` and the CLI stay light.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from lorebase.server_binding import is_loopback
from lorebase.settings import Settings
from lorebase.ui import chainlit_home, login, registry

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lorebase.services import Services

log = logging.getLogger(__name__)

PATH = "/chat"
TARGET = str(Path(__file__).with_name("chat_app.py"))


class ChatUI:
    """The mounted UI; the app's lifespan attaches the services once they are built."""

    async def attach(self, services: Services) -> None:
        await _drop_data_layer()  # one left by an earlier server in this process
        registry.install(services)

    async def detach(self, services: Services) -> None:
        await _drop_data_layer()
        registry.clear(services)


def mount_ui(app: FastAPI, settings: Settings) -> ChatUI | None:
    """Serve the chat UI at /chat; None (and nothing mounted) when it is switched off, when
    chainlit is not installed, or when it would be open to the network without a password."""
    if not settings.ui.enabled:
        return None
    if importlib.util.find_spec("chainlit") is None:
        log.info("chat UI not served: the chainlit package is not installed")
        return None
    if not is_loopback(settings.server.host) and settings.ui.password is None:
        log.warning("chat UI not served: server.host %s is not loopback and ui.password is not set "
                    "(set LOREBASE_UI__PASSWORD, or LOREBASE_UI__ENABLED=false to silence this)", settings.server.host)
        return None
    chainlit_home.async_url(settings.db_url)  # refuses databases the UI's data layer cannot use, before mounting
    root = chainlit_home.prepare(settings)  # sets CHAINLIT_APP_ROOT before chainlit is imported

    from chainlit.config import APP_ROOT, config

    if Path(APP_ROOT) != root:
        log.warning("chainlit was loaded earlier in this process with its app root at %s; it keeps that one", APP_ROOT)
    login.configure(settings, root)
    if config.run.module_name != TARGET:
        from chainlit.utils import mount_chainlit

        mount_chainlit(app, target=TARGET, path=PATH)
    else:
        from chainlit.server import app as chainlit_app

        app.mount(PATH, chainlit_app)
    for route in app.routes:
        if isinstance(route, Mount) and route.path == PATH:
            route.app = AbortedRequests(route.app)
    return ChatUI()


class AbortedRequests:
    """Quiets one Chainlit-when-mounted failure: its path-check middleware (a BaseHTTPMiddleware)
    raises "No response returned." when the browser drops a request before the answer (the
    frontend aborts logo and favicon loads as it re-renders), which would log an error and a
    traceback per page load. Chainlit's own error middleware has already answered 500 by then,
    to a client that is gone; any other error is re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except RuntimeError as e:
            if scope["type"] != "http" or str(e) != "No response returned.":
                raise
            log.debug("chat UI request %s ended without a response (client gone)", scope.get("path"))


async def _drop_data_layer() -> None:
    """Close Chainlit's cached data layer and make it build a fresh one (on the current services)
    at its next use. Chainlit caches it for the process; it has no public reset."""
    import chainlit.data as cl_data

    layer = cl_data._data_layer
    cl_data._data_layer = None
    cl_data._data_layer_initialized = False
    if layer is not None:
        await layer.close()
