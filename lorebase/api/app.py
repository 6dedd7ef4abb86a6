"""The FastAPI application: OpenAI-compatible endpoints, lorebase's own, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from lorebase import __version__
from lorebase.api import errors
from lorebase.api.json_text import reject_lone_surrogates
from lorebase.api.limits import BodyLimit
from lorebase.api.metrics import Metrics, MetricsMiddleware
from lorebase.api.routes import chat, evals, health, models, native
from lorebase.api.routes import feedback as feedback_routes
from lorebase.api.routes import jobs as jobs_routes
from lorebase.api.routes import sources as source_routes
from lorebase.api.security import KeyCheck, check_binding
from lorebase.generation.backend import Generator
from lorebase.generation.summary_jobs import SummaryJobs
from lorebase.index.follow import IndexFollower
from lorebase.scheduler.service import start_in_server, stop_in_server
from lorebase.services import Services
from lorebase.settings import Settings
from lorebase.ui import pages, source_page
from lorebase.ui.mount import mount_ui

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    generator: Generator | None = None,
    start_generator: bool = True,
    on_ready: Callable[[Services], None] | None = None,
    on_progress: Callable[[str, str], None] | None = None,
) -> FastAPI:
    """Build the app. `services` and `generator` may be handed in (tests); otherwise they are built
    at start-up, and the generator starts in the background so search works while it warms up
    (`/healthz` says what is still loading). `on_ready` is called once the generator has answered,
    or has failed to start (then `services.readiness.status` is ``degraded``); `on_progress(part,
    detail)` hears each step of loading."""
    check_binding(settings.server)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services if services is not None else await asyncio.to_thread(Services.build, settings)
        await asyncio.to_thread(svc.search.warm)  # the first request should not pay for loading
        app.state.services = svc
        # Chunks added or removed elsewhere (another replica, the scheduler, a CLI ingest) reach this index.
        follower = IndexFollower(svc.indexer, settings.index.follow_s)
        follower.start()
        if on_progress is not None:
            svc.readiness.subscribe(on_progress)
        if ui is not None:
            await ui.attach(svc)
        task = None
        if generator is not None:
            await svc.start_generator(generator, watch_adapters=True)
            if on_ready is not None:
                on_ready(svc)
        elif start_generator:
            task = asyncio.create_task(_start_generator(svc, on_ready))
        # --- scheduler (lorebase.scheduler): jobs run here when settings.scheduler.enabled ---
        app.state.scheduler = await start_in_server(settings, svc)
        try:
            yield
        finally:
            await stop_in_server(app.state.scheduler)  # scheduler first: no job starts on closing services
            await asyncio.to_thread(follower.stop)
            await app.state.summary_jobs.aclose()
            if task is not None and not task.done():
                task.cancel()
            if ui is not None:
                await ui.detach(svc)
            if svc.adapters is not None:  # also when the services were handed in and outlive the app
                await svc.adapters.stop()
            if services is None:
                await svc.aclose()

    app = FastAPI(title="lorebase", version=__version__, lifespan=lifespan)
    app.state.metrics = Metrics()
    app.state.ingest_lock = threading.Lock()
    app.state.summary_jobs = SummaryJobs(max_running=max(1, settings.generation.max_concurrency // 2))
    errors.install(app)
    # The key first (a stranger learns nothing about bodies), then text that every encoder accepts.
    auth = [Depends(KeyCheck(settings.server)), Depends(reject_lone_surrogates)]
    common = errors.responses(*errors.COMMON)  # each route adds the error statuses of its own
    for router in (chat.router, models.router, native.router, health.metrics_router):
        app.include_router(router, dependencies=auth, responses=common)
    app.include_router(evals.router, dependencies=auth, responses=common)  # /v1/eval/runs: evaluation reports
    app.include_router(feedback_routes.router, dependencies=auth, responses=common)  # /v1/feedback: the review queue
    app.include_router(jobs_routes.router, dependencies=auth, responses=common)  # /v1/jobs: scheduler jobs, runs, tracked sources
    app.include_router(source_routes.router, dependencies=auth, responses=common)  # /v1/sources/{id}: a cited source, as JSON
    app.include_router(health.router, responses=errors.responses(500))
    app.include_router(pages.router)  # /feedback, which checks access itself (API key or chat sign-in)
    app.include_router(source_page.router)  # /sources/{id}, the source viewer, checks access the same way
    ui = mount_ui(app, settings)  # the chat UI at /chat; None when off or chainlit is not installed
    # Outermost first: measure everything, including requests refused for their size.
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


async def _start_generator(svc: Services, on_ready: Callable[[Services], None] | None) -> None:
    try:
        await svc.start_generator(watch_adapters=True, warm_up=True)
        log.info("generator ready: %s", svc.generator.base_model if svc.generator else "?")
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the API still serves search and ingest; chat answers 503 until fixed
        log.error("the generator did not start: %s", e)
    if on_ready is not None:
        on_ready(svc)
