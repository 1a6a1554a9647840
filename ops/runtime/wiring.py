"""The running service: the stream app (streams.app) plus what people and operators use on top of
it: the staff directory, alert delivery, the scheduled jobs and the HTTP routes (including the
collector). One process, one web port served from a thread of its own (ops.runtime.web_thread);
`lde up` builds it (ops.runtime.service)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

import redis
from aiohttp import web

from models.access import Role
from models.clock import Clock, WallClock
from models.outbox import DeliveryPolicy
from models.timebuckets import zone
from ops.edge.collector import Collector, register_collector_routes, statement_ledger
from ops.edge.shared import PUBLISH_TIMEOUT_SECONDS
from ops.http.surface import RouteKind
from ops.jobs.reports.audited import AuditedReads
from ops.jobs.reports.weekly import mailer_from
from ops.jobs.scheduled import JobRunner, clock_today
from ops.metrics import Metrics
from ops.runtime.delivery import AlertNotifier
from ops.runtime.loop_lag import LoopLagProbe
from ops.runtime.web_thread import StreamLoop, StreamLoopPublisher, WebThread, every
from ops.settings import Settings
from ops.staff.auth.api_tokens import ApiTokens
from ops.staff.auth.setup import build_auth
from ops.staff.auth.signin import SignIn
from ops.staff.auth.web import Guard, install_guard, install_security_headers
from ops.staff.deps import AdminDeps, Probes, RouteDeps, StaffDeps, StaffDirectoryCache
from ops.staff.page_views import PageViews
from ops.staff.pool import PagePool, install_shedding, install_timing
from ops.staff.renderer import Renderer
from ops.staff.routes import add_routes, route_kinds
from ops.staff.web.common import page_refusal, sign_in_page
from sinks.clickhouse import ClickHouseStore
from sinks.kafka import WorkerPublisher
from sinks.redis_store import DeliveryLedger
from streams.app import LdeApp

log = logging.getLogger("lde.service")


class Service:
    """Wires the service's parts onto the stream app's Faust app (before the worker starts) and its
    HTTP server onto `sock` (served from a thread of its own once the worker runs): each route is given
    the small dependency object it uses (ops.staff.deps), and the route guard sits in front of every
    route as aiohttp middleware."""

    def __init__(self, lde: LdeApp, sock: socket.socket) -> None:
        self.lde = lde
        settings = lde.settings
        app = lde.app
        redis_client = lde.ledger.client
        if redis_client is None:  # a bug: `lde up` always connects one (sinks.redis_store.connect)
            raise RuntimeError("the service needs its Redis client for sign-in sessions and the audit spool")
        self.directory = StaffDirectoryCache(lde.store)
        self.jobs = JobRunner(settings, lde.store, lde.ledger, lde.metrics, lde.clock, lde.tz)
        self.jobs.schedule(app)
        app.timer(60.0, name="staff_directory")(self.directory.tick)
        # Staff work apart from the stream (issue 26): the HTTP server on a thread and loop of its own
        # (ops.runtime.web_thread), pages on a bounded pool that sheds with 503, page data precomputed
        # after each evaluation and made into pages in a renderer process; both loops' lag measured.
        self.stream_lag = LoopLagProbe(lde.metrics, "stream")
        app.task(self.stream_lag.run)
        self.web_lag = LoopLagProbe(lde.metrics, "web")
        surface = self.surface = StaffSurface.build(
            settings,
            lde.store,
            lde.metrics,
            redis_client,
            self.directory,
            lde.clock,
            self.web_lag,
            rate=settings.worker_pages_per_second,
            yield_to=lde.alerts_first.judging_now,
        )
        self.notifier = notifier_for(settings, self)
        if self.notifier is not None:  # the outbox: recorded before the alerts commit, drained here
            notifier = self.notifier
            lde.alerts_agent.recorders.append(notifier.record)
            app.task(notifier.run)
            lde.status_parts["alert_outbox"] = lambda: notifier.summary and notifier.summary.as_dict()
        deps = RouteDeps(
            probes=Probes(ready=lde.ready, status=lde.status, registry=lde.metrics.registry),
            staff=surface.staff,
            admin=AdminDeps(
                store=lde.store,
                directory=self.directory,
                jobs=self.jobs,
                redis=lde.ledger.client,
                tables={"activity": lde.activity, "roster": lde.roster, "absences": lde.absences},
            ),
            signin=surface.signin,
            tokens=surface.tokens,
        )
        self.stream = StreamLoop()
        web_app = web.Application()
        #: The embedded default serves staff and upstream traffic here too; production leaves them to
        #: `lde web` and `lde edge` (ops.runtime.standalone) and this worker only streams and evaluates.
        serves = settings.worker_serves_staff
        if serves:
            hand_over_sooner(settings)
        add_routes(web_app, deps, probes_only=not serves, on_stream=self.stream.run)
        tasks: list[Callable[[], Awaitable[None]]] = [self.web_lag.run]
        if serves:
            publisher = StreamLoopPublisher(WorkerPublisher(lde, PUBLISH_TIMEOUT_SECONDS), self.stream)
            oldest_accepted = lde.activity_agent.oldest_accepted
            collector = Collector(settings, lde.metrics, publisher, lde.clock, oldest_accepted)
            register_collector_routes(web_app, collector, statement_ledger(lde))
            tasks += surface.tasks()
        kinds = route_kinds()
        install_guard(web_app, surface.guard, kinds)
        surface.install(web_app, kinds)
        self.web = WebThread(sock, web_app, tasks, self.stream)
        app.task(self.web.start)
        app.on_before_shutdown.connect(self.stop_web)

    async def stop_web(self, *_: object, **__: object) -> None:
        """The HTTP server stops first (its answers finish, the audit spool drains, the renderer
        stops), the stream after."""
        await asyncio.to_thread(self.web.stop)

    def student_name(self, student_id: str) -> str:
        value = self.lde.roster.get(student_id)
        if not value:
            return ""
        return f"{value.get('given_name', '')} {value.get('family_name', '')}".strip()


@dataclass(frozen=True)
class StaffSurface:
    """What serves staff pages in a process, built one way for the worker (embedded default) and
    `lde web` (ops.runtime.standalone): the audited reads spooled in Redis, the precomputed views, the
    renderer, the bounded page pool, sign-in and tokens, and the dependencies the routes are given."""

    settings: Settings
    reads: AuditedReads
    views: PageViews
    renderer: Renderer
    guard: Guard
    signin: SignIn
    tokens: ApiTokens
    staff: StaffDeps

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: ClickHouseStore,
        metrics: Metrics,
        redis_client: redis.Redis,
        directory: StaffDirectoryCache,
        clock: Clock,
        lag: LoopLagProbe,
        rate: float = 0.0,
        yield_to: Callable[[], bool] = lambda: False,
    ) -> StaffSurface:
        """The surface on these stores; `clock` the service's (event time in a replay), `lag` the
        serving loop's probe, `rate` the page budget a second (a worker's; 0: none); while `yield_to`
        says so (a worker judging a day) no view is rebuilt, no renderer loaded, no audit row drained
        and a read is shed (503 with Retry-After)."""
        tz = zone(settings.timezone)
        #: Audit rows are stamped on the wall clock even when the stream runs on event time, spooled
        #: in Redis and written to ClickHouse every LDE_AUDIT_FLUSH_SECONDS (chDB has one lane, which
        #: the stream needs).
        reads = AuditedReads.of_store(store, WallClock(), spool_in=redis_client)
        views = PageViews(
            store,
            metrics,
            min_group=settings.min_cohort_size,
            refresh_seconds=settings.web_view_refresh_seconds,
            trend_refresh_seconds=settings.web_trend_refresh_seconds,
            today=lambda: clock_today(clock, tz),
            policy=settings.overdue_policy,
            paused=yield_to,
        )
        renderer = Renderer(settings.web_render_processes, paused=yield_to)
        guard, signin, tokens = build_auth(settings, store, redis_client, metrics, directory)
        staff = StaffDeps(
            settings=settings,
            metrics=metrics,
            store=store,
            reads=reads,
            directory=directory,
            clock=clock,
            tz=tz,
            sessions=signin.sessions,
            pages=page_pool(
                settings, metrics, lag, rate, yield_to if settings.web_shed_while_judging else never
            ),
            views=views,
            renderer=renderer,
        )
        guard.page_refusal = page_refusal(staff)
        signin.page = sign_in_page  # sign-in failures and the signed-out page as styled pages
        return cls(settings, reads, views, renderer, guard, signin, tokens, staff)

    def tasks(self) -> list[Callable[[], Awaitable[None]]]:
        """What runs beside the server: the views' refresh and the audit spool's drain."""
        return [
            every(self.settings.web_view_refresh_seconds, self.views.tick),
            every(self.settings.audit_flush_seconds, self.drain_audit_when_free),
        ]

    def install(self, app: web.Application, kinds: Mapping[str, RouteKind]) -> None:
        """The security headers, the shedding answers, the requests' timing and the cleanup at stop
        on `app`; `kinds` the route kinds the process serves (the caller installs the guard with
        them)."""
        install_security_headers(app, self.settings)
        install_shedding(app, self.staff.pages, kinds)
        install_timing(app, self.staff.metrics)  # outermost: what staff wait for, shedding included
        app.on_cleanup.append(self.at_stop)

    async def drain_audit(self) -> None:
        """The spooled audit rows into ClickHouse (on the views' thread: never the stream's pools); a
        failure leaves them spooled for the next tick."""
        await drain_audit_spool(self.reads, self.views.executor)

    async def drain_audit_when_free(self) -> None:
        """A tick's drain, unless a day is being judged (chDB's one lane is the judgement's then):
        the rows wait in the spool for the next tick."""
        if not self.views.paused():
            await self.drain_audit()

    async def at_stop(self, _: web.Application) -> None:
        """What is spooled is stored before the process stops (it would wait for the next start), and
        the renderer is stopped."""
        await self.drain_audit()
        await asyncio.to_thread(self.renderer.close)


def never() -> bool:
    """A `judging` that is never true (LDE_WEB_SHED_WHILE_JUDGING off)."""
    return False


def hand_over_sooner(settings: Settings) -> None:
    """In a process that serves staff, a thread waiting for the interpreter lock gets it after
    LDE_INTERPRETER_SWITCH_SECONDS (see the setting: a page changes thread several times)."""
    sys.setswitchinterval(settings.interpreter_switch_seconds)


async def drain_audit_spool(reads: AuditedReads, executor: Executor) -> None:
    """The gateway's spooled audit rows into ClickHouse on `executor` (the views' thread: never the
    stream's pools); a failure leaves them spooled for the next tick. `lde up` and `lde web` alike."""
    spool = reads.spool
    if spool is None:
        return
    try:
        await asyncio.get_running_loop().run_in_executor(executor, spool.drain)
    except Exception as error:  # ClickHouse or Redis restarting: the rows wait in the spool
        log.error("audit_spool_drain_failed error=%r", error)


def page_pool(
    settings: Settings,
    metrics: Metrics,
    lag: LoopLagProbe,
    rate: float = 0.0,
    judging: Callable[[], bool] = lambda: False,
) -> PagePool:
    """The staff surface's bounded pool, as the settings size it (LDE_WEB_THREADS, LDE_WEB_QUEUE),
    with `rate` requests a second at most (a worker's LDE_WORKER_PAGES_PER_SECOND; 0: no budget),
    reads shed while `judging` (a worker judging a day)."""
    return PagePool(
        threads=settings.web_threads,
        queue=settings.web_queue,
        retry_after=settings.web_retry_after_seconds,
        max_lag=settings.web_shed_loop_lag_seconds,
        lag=lag,
        metrics=metrics,
        rate=rate,
        judging=judging,
    )


def notifier_for(settings: Settings, service: Service) -> AlertNotifier | None:
    """The alert notifier the settings ask for: email when LDE_SMTP_HOST is set, webhooks for
    LDE_ALERT_WEBHOOK_URLS; None when neither is configured."""
    urls = [u.get_secret_value() for u in settings.alert_webhook_urls if u.get_secret_value()]
    if not settings.smtp_host and not urls:
        return None
    lde = service.lde
    policy = DeliveryPolicy(
        first=timedelta(seconds=settings.alert_delivery_backoff_seconds),
        cap=timedelta(seconds=settings.alert_delivery_backoff_max_seconds),
        deadline=timedelta(hours=settings.alert_delivery_deadline_hours),
    )
    # The lease outlives one try (an SMTP conversation is bounded by its timeout); a worker killed
    # mid-try leaves the delivery to the others once it expires.
    lease = int(max(60.0, 3 * settings.smtp_timeout_seconds))
    return AlertNotifier(
        directory=service.directory,
        ledger=DeliveryLedger(lde.ledger.client, lease_seconds=lease),
        store=lde.store,
        sink=lde.sink,
        metrics=lde.metrics,
        policy=policy,
        poll_seconds=settings.alert_delivery_poll_seconds,
        reads=service.surface.reads,
        student_name=service.student_name,
        mailer=mailer_from(settings) if settings.smtp_host else None,
        sender=settings.smtp_from,
        webhook_urls=urls,
        email_roles=frozenset(Role(r) for r in settings.alert_email_roles),
    )
