"""`lde web` and `lde edge` (issue 26): the staff surface and the HTTP edge as processes of their own,
any number of each behind the institution's proxy, so that staff browsing and upstream posts never
share a process (an interpreter lock, an event loop, a thread pool) with the stream workers.

Both are stateless: sessions, the statement ledger and the figure exchange live in Redis, everything
else in ClickHouse or Kafka. `lde web` serves the route table (ops.staff.routes: the web app, sign-in,
the personal-data and administrators' API) reading ClickHouse and Redis, its pages from the
precomputed views it rebuilds itself (ops.staff.page_views); `lde edge` serves the collector, xAPI and
Canvas endpoints, publishing through its own producer (sinks.kafka.EdgePublisher). Each answers
/health/live, /health/ready (its stores answer) and /metrics (its own registry, with its loop lag).

What a standalone process cannot see: the stream's Faust tables. The privacy check of `lde web`
searches ClickHouse and Redis and says that the tables were not searched (`lde up`'s answers do).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, cast

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.clock import WallClock
from models.timebuckets import zone
from ops.http.surface import RouteKind, as_bytes, as_json
from ops.metrics import Metrics
from ops.runtime.loop_lag import LoopLagProbe
from ops.runtime.web_thread import bind, every, serve_until
from ops.settings import Settings
from sinks.errors import StackError

log = logging.getLogger("lde.service")

#: A task running beside the server (the views' refresh, the audit spool's drain, the loop's lag).
Task = Callable[[], Awaitable[None]]

#: Checked by /health/ready: each of the process's stores answers (blocking; run on a thread).
Check = Callable[[], bool]


def answers(check: Callable[[], Any]) -> Check:
    """A readiness check that is False (not an error) when the store does not answer."""

    def probe() -> bool:
        try:
            return bool(check())
        except Exception:  # an outage is what the probe reports, not raises
            return False

    return probe


def probe_app(kind: str, metrics: Metrics, checks: dict[str, Check]) -> web.Application:
    """An aiohttp application answering /health/live, /health/ready and /metrics for a process kind."""
    app = web.Application()

    async def live(request: web.Request) -> web.Response:
        return as_json({"status": "live", "process": kind})

    async def ready(request: web.Request) -> web.Response:
        found = {name: await asyncio.to_thread(check) for name, check in checks.items()}
        for name, up in found.items():
            metrics.stack_up.labels(component=name).set(up)
        ok = all(found.values())
        return as_json({"ready": ok, "process": kind, **found}, status=200 if ok else 503)

    async def metrics_route(request: web.Request) -> web.Response:
        return as_bytes(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics_route)
    return app


async def serve(settings: Settings, sock: socket.socket, app: web.Application, tasks: list[Task]) -> None:
    """Serve `app` on the bound `sock` with `tasks` running beside it, until SIGTERM/SIGINT."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    log.info("process_serving url=%s", settings.service_url)
    await serve_until(app, sock, tasks, stopped)


def web_process(settings: Settings) -> tuple[web.Application, list[Callable[[], Awaitable[None]]]]:
    """`lde web`'s application and tasks: the route table with its guard, on ClickHouse and Redis."""
    from ops.jobs.scheduled import JobRunner
    from ops.runtime.wiring import StaffSurface, hand_over_sooner
    from ops.staff.auth.web import install_guard
    from ops.staff.deps import AdminDeps, Probes, RouteDeps, StaffDirectoryCache
    from ops.staff.routes import add_routes, route_kinds
    from sinks import clickhouse, redis_store
    from sinks.clickhouse import ClickHouseStore

    metrics = Metrics()
    try:
        store = ClickHouseStore(clickhouse.connect(settings))
    except Exception as error:
        if settings.clickhouse_url.get_secret_value():
            raise  # a server that does not answer: the error says which
        raise StackError(
            f"cannot open chDB at {settings.chdb_path} ({type(error).__name__}): chDB allows one process "
            "per data folder, and while `lde up` runs it serves the web app itself; `lde web` is for "
            "production (LDE_CLICKHOUSE_URL) or a data folder no service holds"
        ) from error
    redis_client = redis_store.connect(settings)
    ledger = redis_store.AlertLedger(redis_client)
    tz = zone(settings.timezone)
    clock = WallClock()
    directory = StaffDirectoryCache(store)
    lag = LoopLagProbe(metrics, "web")
    surface = StaffSurface.build(settings, store, metrics, redis_client, directory, clock, lag)
    hand_over_sooner(settings)
    views = surface.views
    checks = {"clickhouse": answers(store.ping), "redis": answers(redis_client.ping)}
    app = probe_app("web", metrics, checks)

    def status() -> dict[str, Any]:
        view = views.view
        return {"process": "web", "view_as_of": view.as_of.isoformat() if view else None}

    deps = RouteDeps(
        probes=Probes(ready=lambda: (True, {}), status=status, registry=metrics.registry),
        staff=surface.staff,
        admin=AdminDeps(
            store=store,
            directory=directory,
            jobs=JobRunner(settings, store, ledger, metrics, clock, tz),
            redis=redis_client,
            tables={},  # the stream's tables are in the workers (see the module docstring)
        ),
        signin=surface.signin,
        tokens=surface.tokens,
    )
    add_routes(app, deps, skip={"/health/live", "/health/ready", "/metrics"})  # probe_app has its own
    kinds = {path: kind for path, kind in route_kinds().items() if kind is not RouteKind.UPSTREAM}
    install_guard(app, surface.guard, kinds)
    surface.install(app, kinds)
    return app, [lag.run, every(60.0, directory.tick), *surface.tasks()]


def edge_process(settings: Settings) -> tuple[web.Application, list[Callable[[], Awaitable[None]]]]:
    """`lde edge`'s application and tasks: the collector, xAPI and Canvas, publishing to Kafka."""
    from models.access import IdentityRequired, StaffDirectory
    from models.clock import WallClock
    from models.timebuckets import zone
    from ops.edge.collector import Collector, register_collector_routes
    from ops.edge.shared import PUBLISH_TIMEOUT_SECONDS
    from ops.runtime.embedded import kafka_ready
    from ops.staff.auth.authenticator import Authenticator
    from ops.staff.auth.web import Guard, install_guard, install_security_headers
    from ops.staff.routes import route_kinds
    from sinks import redis_store
    from sinks.kafka import EdgePublisher
    from sinks.statement_ledger import AsyncStatementLedger, async_client
    from streams.batch import oldest_accepted_days

    metrics = Metrics()
    publisher = EdgePublisher(settings, PUBLISH_TIMEOUT_SECONDS)
    redis_client = redis_store.connect(settings)
    ledger = AsyncStatementLedger(
        async_client(redis_client, settings.redis_url.get_secret_value()), settings.xapi_ledger_days
    )
    clock = WallClock()  # the edge runs in production, on the wall clock
    lateness = timedelta(hours=settings.lateness_hours)
    tz = zone(settings.timezone)

    def oldest_accepted(partitions: Iterable[int]) -> dict[int, int]:
        """The stream's lateness limit on the wall clock: the same for every partition."""
        return oldest_accepted_days(dict.fromkeys(partitions, clock.now()), lateness, tz)

    collector = Collector(settings, metrics, publisher, clock=clock, oldest_accepted=oldest_accepted)
    checks = {
        "kafka": answers(lambda: kafka_ready(settings.kafka_bootstrap)),
        "redis": answers(redis_client.ping),
    }
    app = probe_app("edge", metrics, checks)
    register_collector_routes(app, collector, ledger)

    class NoStaffHere:
        """The edge serves no staff route: the guard only checks the scrape token of /metrics."""

        async def identify(self, request: web.Request) -> Any:
            raise IdentityRequired("the edge serves no staff routes")

    empty = StaffDirectory()
    guard = Guard(settings, metrics, cast(Authenticator, NoStaffHere()), lambda: empty)
    edge_paths = {str(r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    install_guard(app, guard, {p: k for p, k in route_kinds().items() if p in edge_paths})
    install_security_headers(app, settings)

    async def start(_: web.Application) -> None:
        await publisher.start()

    async def stop(_: web.Application) -> None:
        await publisher.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    lag = LoopLagProbe(metrics, "web")
    return app, [lag.run]


def run(settings: Settings, kind: str) -> int:
    """Run `lde web` or `lde edge` until stopped. Returns the exit code."""
    from ops.runtime.service import configure_logging

    configure_logging()
    build = web_process if kind == "web" else edge_process
    try:
        sock = bind(settings.web_host, settings.web_port)  # a port in use: a clear error, at once
        app, tasks = build(settings)
    except StackError as error:
        log.error("cannot start: %s", error)
        print(f"lde: {error}", file=sys.stderr)
        return 2
    log.info("process_starting kind=%s url=%s", kind, settings.service_url)
    asyncio.run(serve(settings, sock, app, tasks))
    return 0
