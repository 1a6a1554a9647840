"""The running service: the stream app (streams.app) plus what people and operators use on top of
it: the staff directory, alert delivery, the scheduled jobs and the HTTP routes (including the
collector). One process, one web port; `lde up` builds it (ops.runtime.service)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from models.access import Role, Staff, StaffDirectory
from models.alerts import Alert
from models.announcements import Announcement, announcements
from ops.edge.collector import register_collector
from ops.jobs.reports.weekly import mailer_from
from ops.jobs.scheduled import JobRunner
from ops.runtime.delivery import AlertNotifier
from ops.settings import Settings
from ops.staff.auth.setup import build_auth
from ops.staff.auth.web import identity_of, install_security_headers, viewer_of
from ops.staff.routes import register_routes
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import DeliveryLedger
from streams.app import LdeApp

log = logging.getLogger("lde.service")

#: Alerts delivered at the same time, at most (a slow mail server never blocks the others).
DELIVERY_SLOTS = 8


class StaffDirectoryCache:
    """The staff directory as last loaded, refreshed from ClickHouse every minute so that every worker
    of a production deployment follows a load made through any of them."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.directory = StaffDirectory()
        self.refresh()

    def refresh(self) -> None:
        self.directory = StaffDirectory.from_rows(self.store.staff_rows())

    def replace(self, directory: StaffDirectory) -> None:
        """A load this worker just made (the others follow within a minute)."""
        self.directory = directory

    async def tick(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
        except Exception as error:  # keep the last good directory; ClickHouse may be restarting
            log.error("staff_directory_refresh_failed error=%r", error)


class DeliveryWorker:
    """Delivers stored alerts, several at a time, off the alerts agent's path."""

    def __init__(self, notifier: AlertNotifier) -> None:
        self.notifier = notifier
        self.queue: asyncio.Queue[Announcement] = asyncio.Queue()

    def enqueue(self, alerts: list[Alert]) -> None:
        # A student's alerts of one day in one message (issue 24.5); the ledger makes each delivery once.
        for announcement in announcements(alerts):
            self.queue.put_nowait(announcement)

    async def run(self) -> None:
        slots = asyncio.Semaphore(DELIVERY_SLOTS)
        notifier = self.notifier

        async def one(announcement: Announcement) -> None:
            async with slots:
                try:
                    await notifier.announce(announcement)
                except Exception as error:  # a bug: logged loudly, the other deliveries go on
                    alert_id = announcement.lead.alert_id
                    log.exception("alert_delivery_crashed alert=%s error=%r", alert_id, error)

        running: set[asyncio.Task[None]] = set()
        while True:
            alert = await self.queue.get()
            task = asyncio.ensure_future(one(alert))
            running.add(task)
            task.add_done_callback(running.discard)


class Service:
    """Wires the service's parts onto the stream app's Faust app (before the worker starts)."""

    def __init__(self, lde: LdeApp) -> None:
        self.lde = lde
        settings = lde.settings
        app = lde.app
        self.directory = StaffDirectoryCache(lde.store)
        self.jobs = JobRunner(settings, lde.store, lde.ledger, lde.metrics, lde.clock, lde.tz)
        self.jobs.schedule(app)
        app.timer(60.0, name="staff_directory")(self.directory.tick)
        notifier = notifier_for(settings, self)
        if notifier is not None:
            worker = DeliveryWorker(notifier)
            lde.alerts_agent.listeners.append(worker.enqueue)
            app.task(worker.run)
        register_collector(app, lde)
        self.guard, self.signin, self.tokens = build_auth(settings, lde, lambda: self.directory.directory)
        self.guard.page_refusal = self._page_refusal
        register_routes(app, self)
        install_security_headers(app.web.web_app, settings)  # type: ignore[attr-defined]

    def viewer(self, request: Any) -> Staff:
        """Who is asking: the identity the route guard verified (ops.staff.auth). Raises
        IdentityRequired when there is none (the operator default is gone: issue 15)."""
        return viewer_of(request)

    # -- CSRF for the web app's forms (the guard checks cookie requests before any handler runs) ---
    async def csrf_token(self, request: Any) -> str:
        """The token a POST form of the web app carries in its hidden `csrf_token` field: the
        signed-in session's ("" for a request not made with a session cookie, which needs none)."""
        identity = identity_of(request)
        if identity is None or not identity.by_cookie:
            return ""
        return await self.signin.sessions.csrf_of(identity.session_id) or ""

    async def check_csrf(self, request: Any, submitted: str) -> bool:
        """Whether a submitted form's `csrf_token` is the session's (always, for requests that are
        not made with a session cookie: a bearer token or a trusted proxy cannot be forged cross-site)."""
        identity = identity_of(request)
        if identity is None or not identity.by_cookie:
            return True
        return bool(submitted) and await self.signin.sessions.csrf_ok(identity.session_id, submitted)

    def _page_refusal(self, view: Any, request: Any, error: Exception) -> Any:
        """A browser page's refusal (no identity, unknown staff) as a page with a sign-in link."""
        from ops.staff.web.common import page_of, refused

        return refused(self, view, request, page_of(request.path), error)

    def student_name(self, student_id: str) -> str:
        value = self.lde.roster.get(student_id)
        if not value:
            return ""
        return f"{value.get('given_name', '')} {value.get('family_name', '')}".strip()


def notifier_for(settings: Settings, service: Service) -> AlertNotifier | None:
    """The alert notifier the settings ask for: email when LDE_SMTP_HOST is set, webhooks for
    LDE_ALERT_WEBHOOK_URLS; None when neither is configured."""
    urls = [u.get_secret_value() for u in settings.alert_webhook_urls if u.get_secret_value()]
    if not settings.smtp_host and not urls:
        return None
    lde = service.lde
    return AlertNotifier(
        directory=lambda: service.directory.directory,
        ledger=DeliveryLedger(lde.ledger.client),
        metrics=lde.metrics,
        write_audit=lde.store.write_audit,
        student_name=service.student_name,
        mailer=mailer_from(settings) if settings.smtp_host else None,
        sender=settings.smtp_from,
        webhook_urls=urls,
        email_roles=frozenset(Role(r) for r in settings.alert_email_roles),
        attempts=settings.alert_delivery_attempts,
        backoff_seconds=settings.alert_delivery_backoff_seconds,
    )
