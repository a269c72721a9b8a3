"""The composition root: builds the FastAPI application from every context's router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.datastructures import State

from zhongtai import __version__
from zhongtai.catalog.api import router as catalog_router
from zhongtai.core.audit_api import router as audit_router
from zhongtai.core.auth.api import router as auth_router
from zhongtai.core.auth.key_cache import VerifiedKeyCache
from zhongtai.core.db import Database
from zhongtai.core.http.body_limit import BodySizeLimitMiddleware
from zhongtai.core.http.middleware import RequestContextMiddleware
from zhongtai.core.http.problems import install_problem_handlers
from zhongtai.core.http.routing import size_thread_pool
from zhongtai.core.jobs import PeriodicJob, run_periodically
from zhongtai.core.logging import configure_logging
from zhongtai.core.settings import Settings, get_settings
from zhongtai.fulfillment.api import router as fulfillment_router
from zhongtai.fulfillment.api_couriers import router as couriers_router
from zhongtai.fulfillment.api_reports import router as fulfillment_reports_router
from zhongtai.fulfillment.courier_watch import courier_watch
from zhongtai.fulfillment.parcel_receipts import parcel_receipts
from zhongtai.fulfillment.promise_clock import promise_clock
from zhongtai.fulfillment.sla import flag_sla_breaches
from zhongtai.guides.api import router as guides_router
from zhongtai.guides.api_commission import router as guide_commission_router
from zhongtai.guides.api_workbench import router as guide_workbench_router
from zhongtai.guides.jobs import generate_todays_tasks, mature_commission_now
from zhongtai.integrations.api_imports import router as imports_router
from zhongtai.integrations.api_marketplace import router as marketplace_router
from zhongtai.integrations.api_stream import router as events_router
from zhongtai.integrations.api_webhooks import router as webhooks_router
from zhongtai.integrations.api_wecom import router as wecom_router
from zhongtai.integrations.providers import Providers, built_in_providers
from zhongtai.integrations.runtime import run_event_backbone, settle_long_lived_objects
from zhongtai.integrations.settings import EventSettings
from zhongtai.integrations.wecom.directory import WeComDirectory
from zhongtai.integrations.wecom.settings import wecom_settings
from zhongtai.inventory.api import router as inventory_router
from zhongtai.inventory.reservation_desk import ReservationDesk
from zhongtai.inventory.reservations import reservation_sweeper
from zhongtai.loyalty.api import router as points_router
from zhongtai.loyalty.maturing import mature_points_now
from zhongtai.members.api import router as members_router
from zhongtai.orders import loyalty_handlers as _loyalty_handlers  # noqa: F401  (registers them)
from zhongtai.orders.api import router as orders_router
from zhongtai.orders.api_checkout import router as checkout_router
from zhongtai.orders.api_finance import router as finance_router
from zhongtai.orders.api_payments import router as payments_router
from zhongtai.orders.api_pos import router as pos_router
from zhongtai.orders.api_returns import router as returns_router
from zhongtai.orders.uncollected_orders import uncollected_order_sweeper
from zhongtai.orders.unpaid_orders import unpaid_order_sweeper
from zhongtai.stores.api import router as stores_router

API_PREFIX = "/api/v1"

DESCRIPTION = """
One backend for every touchpoint of an omnichannel retail chain: store POS, app,
mini-program, marketplaces and the shopping guide's phone.

**Conventions.** Money is integer fen (分) with a currency code. Timestamps are ISO 8601
with offset. Errors are RFC 9457 `application/problem+json` with a stable `type`.
Every POST/PUT/PATCH accepts an `Idempotency-Key`. Lists use cursor pagination
(`cursor`, `limit`, `next_cursor`). Every response carries `X-Request-ID`.
"""


def housekeeping_jobs(settings: Settings, providers: Providers) -> list[PeriodicJob]:
    """What `serve` runs in the background besides the event relay (interval 0 turns a job off)."""
    every = settings.reservation_sweep_seconds
    jobs = [
        reservation_sweeper(every),
        unpaid_order_sweeper(every, providers.payments),
        uncollected_order_sweeper(every, providers.payments),
        parcel_receipts(every),
        PeriodicJob("sla-clock", every, flag_sla_breaches),
        promise_clock(every),
        courier_watch(every, providers, settings.courier_quiet_minutes),
        PeriodicJob("commission-maturing", every, mature_commission_now),
        PeriodicJob("points-maturing", every, mature_points_now),
        # Hourly: each store's list for its local day appears soon after local midnight.
        PeriodicJob("guide-tasks", 3600 if every > 0 else 0, generate_todays_tasks),
    ]
    return [job for job in jobs if job.every_seconds > 0]


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    *,
    providers: Providers | None = None,
    desk_db: Database | None = None,
) -> FastAPI:
    """The API. ``db`` and ``providers`` default to the settings' own; ``desk_db`` gives the
    reservation desk its connections (by default a pool of its own on the settings' database;
    tests whose sessions share one connection pass that database)."""
    settings = settings or get_settings()
    app = routed_app(settings)
    run_on(app, settings, db, providers=providers, desk_db=desk_db)
    return app


@dataclass
class _Runtime:
    """What an app's lifespan closes or opens beside ``app.state``'s settings, database and
    providers: which of them it owns, and the desk's and WeCom's, set by :func:`run_on`."""

    owns_db: bool
    owns_providers: bool
    desk_db: Database | None
    wecom_directory: WeComDirectory | None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: _Runtime = app.state.runtime
    settings: Settings = app.state.settings
    database: Database = app.state.db
    providers: Providers = app.state.providers
    size_thread_pool(settings.db_pool_size)
    # The embedded default relays events inside the server (an app handed a database by its
    # caller, as in tests, runs none: the caller decides).
    stop = asyncio.Event()
    backbone = None
    events = EventSettings()
    if runtime.owns_db and events.relay_in_process:
        backbone = asyncio.create_task(run_event_backbone(database, settings, events, stop))
    app.state.event_backbone = backbone
    # The desk holds stock on connections of its own, so that a rush on the request pool never
    # makes it (and every request waiting for it) queue for a connection.
    desk_database = runtime.desk_db or Database.connect(
        settings.database_url, pool_size=settings.reservation_desk_workers, max_overflow=0
    )
    app.state.reservation_desk = desk = ReservationDesk(
        desk_database, workers=settings.reservation_desk_workers
    )
    jobs = [
        asyncio.create_task(run_periodically(database, job, stop))
        for job in housekeeping_jobs(settings, providers)
        if runtime.owns_db
    ]
    yield
    stop.set()
    if backbone is not None:
        await backbone
    await asyncio.gather(*jobs)
    await asyncio.to_thread(desk.close)  # finishes what has queued
    if runtime.desk_db is None:
        desk_database.dispose()
    if runtime.owns_providers:
        providers.close()
    if runtime.wecom_directory is not None:
        runtime.wecom_directory.close()
    if runtime.owns_db:
        database.dispose()


def run_on(
    app: FastAPI,
    settings: Settings,
    db: Database | None = None,
    *,
    providers: Providers | None = None,
    desk_db: Database | None = None,
) -> None:
    """Give a routed app (:func:`routed_app`) what it runs on: its database, providers, caches
    and request slots, replacing whatever it ran on before (its state and dependency
    overrides start afresh). The routes are built once; FastAPI prepares each route on an
    app's first requests, which costs more than most requests, so the tests route one app
    and run it on each test's database in turn."""
    configure_logging(settings.log_level, json=settings.log_json)
    database = db or Database.connect(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    wecom = wecom_settings()
    app.state = State()
    app.dependency_overrides.clear()
    app.state.settings = settings
    # One connection per request in its endpoint, each kept open: overflow connections are
    # closed as soon as they come back to a full pool, so requests running on them would open
    # a PostgreSQL backend (cold caches, every statement planned again) per burst of load.
    app.state.request_slots = asyncio.Semaphore(settings.db_pool_size)
    app.state.db = database
    # Payment and courier providers call back over HTTP; a caller may bring its own (tests).
    app.state.providers = providers or built_in_providers(settings)
    app.state.api_key_cache = VerifiedKeyCache(settings.api_key_cache_seconds)
    app.state.wecom = wecom
    app.state.wecom_directory = directory = (
        WeComDirectory(wecom.corp_id, wecom.secret.get_secret_value(), base_url=wecom.api_base_url)
        if wecom.corp_id and wecom.secret
        else None
    )
    app.state.runtime = _Runtime(
        owns_db=db is None,
        owns_providers=providers is None,
        desk_db=desk_db,
        wecom_directory=directory,
    )


def routed_app(settings: Settings) -> FastAPI:
    """What the API serves: its routes, error handlers and middleware (body limits from
    ``settings``), not yet running on anything (:func:`run_on`)."""
    app = FastAPI(
        title="Zhongtai API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    install_problem_handlers(app)
    # The last added runs first: every answer, a refused body's too, carries its request id.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        bulk_max_bytes=settings.max_bulk_body_bytes,
    )
    app.add_middleware(RequestContextMiddleware)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Touches nothing else."""
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    # A request is matched against the routes in this order, one by one (about 3 us each), so
    # the busiest come first: checkout, orders and tills before back-office configuration.
    for router in (
        checkout_router,
        orders_router,
        payments_router,  # after orders_router: GET /orders/{id}/payments is the orders'
        returns_router,
        pos_router,
        fulfillment_router,
        couriers_router,
        fulfillment_reports_router,
        inventory_router,
        members_router,
        points_router,
        catalog_router,
        stores_router,
        auth_router,
        guide_workbench_router,  # before guides_router: /guides/me is not a guide id
        guides_router,
        guide_commission_router,
        finance_router,
        imports_router,
        marketplace_router,
        webhooks_router,
        events_router,
        audit_router,
        wecom_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    return app


def served_app() -> FastAPI:
    """The application ``zhongtai serve`` runs in each worker: :func:`create_app`, with what it
    built (routes, models, schemas) kept out of the garbage collector's full passes
    (:func:`~zhongtai.integrations.runtime.settle_long_lived_objects`) from the start, whether
    or not the worker also runs the event relay (which settles them too)."""
    app = create_app()
    settle_long_lived_objects()
    return app
