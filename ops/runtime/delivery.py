"""Near-real-time alert delivery: each alert, by email and webhook, to the staff entitled to see it.

The service hands every alert it consumes from `lde.alerts` to `AlertNotifier.deliver` (in the
background, so a slow mail server never holds up the stream). Recipients come from the one access
policy; each (alert, channel, recipient) is claimed in the Redis delivery ledger first, so it is made
at most once across restarts and workers; failures are retried with a doubling back-off, then
released and counted (`lde_alert_deliveries_total{channel,outcome}`). Every delivery is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.access import Action, AuditEntry, Role, Staff, StaffDirectory, audit
from models.alerts import Alert
from models.announcements import Announcement
from ops.jobs.reports.render import alert_subject, announcement_html, announcement_subject, announcement_text
from ops.metrics import Metrics
from sinks.mail import DeliveryError, SmtpMailer, compose, post_json
from sinks.redis_store import DeliveryLedger
from sinks.retry import Backoff

log = logging.getLogger("lde.delivery")
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """One delivery of one alert: an email to a member of staff, or a POST to a webhook."""

    channel: str  # "email" or "webhook"
    key: str  # staff id, or a digest of the webhook URL (URLs often carry a secret)
    staff: Staff | None = None
    url: str = ""


def webhook_key(url: str) -> str:
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def targets_for(
    alert: Alert,
    directory: StaffDirectory,
    email_roles: frozenset[Role],
    webhook_urls: Sequence[str],
    email: bool,
) -> tuple[list[Staff], list[Target]]:
    """Who is entitled to the alert (the access policy) and the deliveries to make. Pure."""
    entitled = directory.entitled(alert)
    targets = []
    if email:
        mailed = {s.staff_id for s in directory.entitled(alert, email_roles)}
        targets += [Target("email", s.staff_id, staff=s) for s in entitled if s.staff_id in mailed]
    targets += [Target("webhook", webhook_key(url), url=url) for url in webhook_urls]
    return entitled, targets


def webhook_payload(alert: Alert, student_name: str, entitled: Sequence[Staff]) -> dict[str, Any]:
    """The JSON body: the alert, the student's name, and the staff entitled to see it."""
    return {
        "type": "lde.alert",
        "alert_id": alert.alert_id,
        "rule": alert.rule.value,
        "raised_on": alert.raised_on.isoformat(),
        "student_id": alert.student_id,
        "student_name": student_name,
        "programme_code": alert.programme_code,
        "year_of_study": alert.year_of_study,
        "mode": alert.mode,
        "school": alert.school,
        "explanation": alert.explanation,
        "band": alert.band,
        "score": alert.score,
        "text": f"{alert_subject(alert, student_name)}: {alert.explanation}",
        "recipients": [{"staff_id": s.staff_id, "name": s.name, "email": s.email} for s in entitled],
    }


class AlertNotifier:
    """Delivers alerts; async, with blocking I/O (SMTP, HTTP) in threads."""

    def __init__(
        self,
        directory: Callable[[], StaffDirectory],
        ledger: DeliveryLedger,
        metrics: Metrics,
        write_audit: Callable[[list[AuditEntry]], None],
        student_name: Callable[[str], str],
        mailer: SmtpMailer | None = None,
        sender: str = "",
        webhook_urls: Sequence[str] = (),
        email_roles: frozenset[Role] = frozenset(Role),
        attempts: int = 5,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.ledger = ledger
        self.metrics = metrics
        self.write_audit = write_audit
        self.student_name = student_name
        self.mailer = mailer
        self.sender = sender
        self.webhook_urls = list(webhook_urls)
        self.email_roles = email_roles
        self.attempts = attempts
        self.backoff = Backoff(first=backoff_seconds, cap=MAX_BACKOFF_SECONDS)
        self.sleep = sleep
        self.now = now

    async def deliver(self, alert: Alert) -> dict[str, str]:
        """Make every delivery of one alert; returns the outcome per target key."""
        return await self.announce(Announcement(alert.student_id, alert.raised_on, (alert,)))

    async def announce(self, announcement: Announcement) -> dict[str, str]:
        """Make every delivery of one student's alerts of one day (models.announcements): one email
        per recipient for all of them; each alert is still claimed and confirmed in the ledger on its
        own, so an alert re-read later is never sent twice. Returns the outcome per target key."""
        lead = announcement.lead
        entitled, targets = targets_for(
            lead, self.directory(), self.email_roles, self.webhook_urls, self.mailer is not None
        )
        name = self.student_name(lead.student_id)
        outcomes = await asyncio.gather(*(self._one(announcement.alerts, name, entitled, t) for t in targets))
        return {t.key: o for t, o in zip(targets, outcomes, strict=True)}

    async def _one(self, alerts: tuple[Alert, ...], name: str, entitled: list[Staff], target: Target) -> str:
        counter = self.metrics.alert_deliveries
        claimed = [
            a
            for a in alerts
            if await asyncio.to_thread(self.ledger.claim, a.student_id, a.alert_id, target.key)
        ]
        if not claimed:
            counter.labels(channel=target.channel, outcome="duplicate").inc()
            return "duplicate"
        alert = claimed[0]
        delay = self.backoff.after(None)
        for attempt in range(1, self.attempts + 1):
            try:
                await asyncio.to_thread(self._send, claimed, name, entitled, target)
            except DeliveryError as error:
                last = attempt == self.attempts or error.permanent
                log.warning(
                    "alert_delivery_error alert=%s channel=%s to=%s attempt=%d error=%r%s",
                    alert.alert_id,
                    target.channel,
                    target.key,
                    attempt,
                    str(error),
                    "" if last else f" retry_in={delay:.1f}s",
                )
                if last:
                    break
                counter.labels(channel=target.channel, outcome="retried").inc()
                await self.sleep(delay)
                delay = self.backoff.after(delay)
                continue
            for sent in claimed:
                await asyncio.to_thread(self.ledger.confirm, sent.student_id, sent.alert_id, target.key)
            counter.labels(channel=target.channel, outcome="sent").inc()
            reader = target.staff.staff_id if target.staff else f"webhook:{target.key}"
            entry = audit(self.now(), reader, Action.ALERT_DELIVERY, target.channel, [alert.student_id])
            await asyncio.to_thread(self.write_audit, [entry])
            return "sent"
        for failed in claimed:
            await asyncio.to_thread(self.ledger.release, failed.student_id, failed.alert_id, target.key)
        counter.labels(channel=target.channel, outcome="failed").inc()
        log.error(
            "alert_delivery_failed alert=%s channel=%s to=%s", alert.alert_id, target.channel, target.key
        )
        return "failed"

    def _send(self, alerts: list[Alert], name: str, entitled: list[Staff], target: Target) -> None:
        """One email for the alerts; a webhook, a machine, gets each alert in its own POST."""
        if target.channel == "email":
            assert self.mailer is not None and target.staff is not None
            staff = target.staff
            self.mailer.send(
                compose(
                    self.sender,
                    staff.name,
                    staff.email,
                    announcement_subject(alerts, name),
                    announcement_text(alerts, name, staff.name),
                    announcement_html(alerts, name, staff.name),
                )
            )
        else:
            for alert in alerts:
                post_json(target.url, webhook_payload(alert, name, entitled))
