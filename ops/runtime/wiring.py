"""The running service: the stream app (streams.app) plus what people and operators use on top of
it: the staff directory, alert delivery, the scheduled jobs and the HTTP routes (including the
collector). One process, one web port; `lde up` builds it (ops.runtime.service)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from models.access import Role, Staff, StaffDirectory
from models.outbox import DeliveryPolicy
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
        self.notifier = notifier_for(settings, self)
        if self.notifier is not None:  # the outbox: recorded before the alerts commit, drained here
            lde.alerts_agent.recorders.append(self.notifier.record)
            app.task(self.notifier.run)
            notifier = self.notifier
            lde.status_parts["alert_outbox"] = lambda: notifier.summary and notifier.summary.as_dict()
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
    policy = DeliveryPolicy(
        first=timedelta(seconds=settings.alert_delivery_backoff_seconds),
        cap=timedelta(seconds=settings.alert_delivery_backoff_max_seconds),
        deadline=timedelta(hours=settings.alert_delivery_deadline_hours),
    )
    # The lease outlives one try (an SMTP conversation is bounded by its timeout); a worker killed
    # mid-try leaves the delivery to the others once it expires.
    lease = int(max(60.0, 3 * settings.smtp_timeout_seconds))
    return AlertNotifier(
        directory=lambda: service.directory.directory,
        ledger=DeliveryLedger(lde.ledger.client, lease_seconds=lease),
        store=lde.store,
        sink=lde.sink,
        metrics=lde.metrics,
        policy=policy,
        poll_seconds=settings.alert_delivery_poll_seconds,
        write_audit=lde.store.write_audit,
        student_name=service.student_name,
        mailer=mailer_from(settings) if settings.smtp_host else None,
        sender=settings.smtp_from,
        webhook_urls=urls,
        email_roles=frozenset(Role(r) for r in settings.alert_email_roles),
    )
