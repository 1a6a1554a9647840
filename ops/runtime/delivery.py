"""Alert delivery through a durable outbox: each alert, by email and webhook, to the staff entitled
to see it, never lost to a crash or a mail server down for hours.

The alerts agent awaits `AlertNotifier.record` for every batch before the batch commits: the
deliveries (one per alert x channel x recipient, from the one access policy) are written to the
ClickHouse outbox (models.outbox, sinks.clickhouse.outbox). Every worker drains the outbox it sees
(`AlertNotifier.run`): a delivery is claimed in the Redis delivery ledger with a short lease (so two
workers never make it at the same time), made, confirmed in the ledger, and its new state recorded.
Failures are tried again with a doubling back-off until the deadline, then dead-lettered
(`lde_alert_deliveries_total{outcome="dead_lettered"}`, `LdeAlertDeliveryDeadLettered`). The one
duplicate window: a crash after the server accepted a message and before the ledger said so; the
lease then expires and the delivery is made again. Every delivery is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.access import Action, Role, Staff, StaffDirectory
from models.alerts import Alert
from models.announcements import OutboxMessage, outbox_messages
from models.outbox import Attempt, DeliveryPolicy, OutboxEntry, OutboxSummary, after_attempt, already_sent
from ops.jobs.reports.audited import AuditedReads
from ops.jobs.reports.render import alert_subject, announcement_html, announcement_subject, announcement_text
from ops.metrics import Metrics
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import outbox as outbox_store
from sinks.mail import DeliveryError, SmtpMailer, compose, post_json
from sinks.redis_store import DeliveryLedger
from sinks.retry import ClickHouseSink, is_transient

log = logging.getLogger("lde.delivery")

#: Deliveries made at the same time by one worker, at most (a slow server never blocks the others).
DELIVERY_SLOTS = 8


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
    """Records alert deliveries in the outbox and drains it; blocking I/O (ClickHouse, Redis, SMTP,
    HTTP) in threads."""

    def __init__(
        self,
        *,
        directory: Callable[[], StaffDirectory],
        ledger: DeliveryLedger,
        store: ClickHouseStore,
        sink: ClickHouseSink,
        metrics: Metrics,
        reads: AuditedReads,
        student_name: Callable[[str], str],
        policy: DeliveryPolicy,
        poll_seconds: float,
        mailer: SmtpMailer | None = None,
        sender: str = "",
        webhook_urls: Sequence[str] = (),
        email_roles: frozenset[Role] = frozenset(Role),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.ledger = ledger
        self.store = store
        self.sink = sink
        self.metrics = metrics
        self.reads = reads  # every delivery is a read of the student's data, audited by the gateway
        self.student_name = student_name
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.mailer = mailer
        self.sender = sender
        self.webhooks = {webhook_key(url): url for url in webhook_urls}
        self.email_roles = email_roles
        self.now = now
        self.summary: OutboxSummary | None = None  # None until the outbox was first read
        self._wake = asyncio.Event()

    # -- recording (the alerts agent, before its batch commits) ------------------------------------
    def entries_for(self, alerts: Sequence[Alert], recorded_at: datetime) -> list[OutboxEntry]:
        """Every delivery of these alerts, as first records."""
        directory = self.directory()
        entries = []
        for alert in alerts:
            _, targets = targets_for(
                alert, directory, self.email_roles, list(self.webhooks.values()), self.mailer is not None
            )
            text = alert.model_dump_json()
            entries += [
                OutboxEntry(alert.alert_id, alert.student_id, t.channel, t.key, recorded_at, alert_json=text)
                for t in targets
            ]
        return entries

    async def record(self, alerts: list[Alert]) -> None:
        """Write the alerts' deliveries to the outbox (waits out a ClickHouse outage; returns once
        they landed), then wake the drainer."""
        entries = self.entries_for(alerts, self.now())
        if entries:
            await self.sink.write("alert_outbox", outbox_store.write_entries, self.store, entries)
        self._wake.set()

    # -- draining (every worker) -------------------------------------------------------------------
    async def run(self) -> None:
        """Drain for ever: at start (what an earlier process left), when woken, every poll."""
        while True:
            self._wake.clear()
            try:
                await self.drain_once()
            except Exception as error:
                if is_transient(error):
                    log.warning("alert_outbox_unreadable error=%r retry_in=%.1fs", error, self.poll_seconds)
                else:  # a bug: loud, and the drainer goes on (the deliveries stay in the outbox)
                    log.exception("alert_outbox_drain_crashed error=%r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def drain_once(self) -> int:
        """Try every delivery due now; returns how many were tried. Updates the summary gauges.

        Deliveries go out as messages (models.announcements.outbox_messages): a student's alerts of
        one day reach a recipient as one email; each delivery is claimed and recorded on its own."""
        due = await asyncio.to_thread(outbox_store.due_entries, self.store, self.now())
        slots = asyncio.Semaphore(DELIVERY_SLOTS)

        async def one(message: OutboxMessage) -> None:
            async with slots:
                await self._deliver(message)

        await asyncio.gather(*(one(m) for m in outbox_messages(due)))
        summary = self.summary = await asyncio.to_thread(outbox_store.summary, self.store)
        oldest = summary.oldest_pending_at
        self.metrics.alert_outbox.labels(status="pending").set(summary.pending)
        self.metrics.alert_outbox.labels(status="dead").set(summary.dead)
        self.metrics.alert_outbox_oldest.set((self.now() - oldest).total_seconds() if oldest else 0)
        return len(due)

    async def _claimed(self, message: OutboxMessage) -> OutboxMessage | None:
        """The part of a message this drainer holds the claims of (None: none). A delivery already
        made but not recorded (a crash between the two) is recorded as sent, not made again."""
        held = []
        for entry, alert in zip(message.entries, message.alerts, strict=True):
            args = (entry.student_id, entry.alert_id, entry.target)
            if await asyncio.to_thread(self.ledger.claim, *args):
                held.append((entry, alert))
            elif await asyncio.to_thread(self.ledger.state, *args) == "sent":
                await self._write(already_sent(entry))
                self.metrics.alert_deliveries.labels(channel=entry.channel, outcome="duplicate").inc()
            # else: another drainer is making it now
        if not held:
            return None
        return OutboxMessage(tuple(e for e, _ in held), tuple(a for _, a in held))

    async def _deliver(self, message: OutboxMessage) -> None:
        claimed = await self._claimed(message)
        if claimed is None:
            return
        attempt, error = await self._attempt(claimed)
        for entry in claimed.entries:
            after = after_attempt(entry, attempt, self.now(), self.policy, error)
            # Shielded: a clean stop arriving now must not leave a sent email unconfirmed (its lease
            # would expire and it would be sent again).
            await asyncio.shield(self._settle(entry, after, attempt))
            self._report(entry, after, error)

    def _report(self, entry: OutboxEntry, after: OutboxEntry, error: str) -> None:
        outcome = {"sent": "sent", "pending": "retried", "dead": "dead_lettered"}[after.status.value]
        self.metrics.alert_deliveries.labels(channel=entry.channel, outcome=outcome).inc()
        if outcome == "dead_lettered":
            log.error(
                "alert_delivery_dead_lettered alert=%s channel=%s to=%s attempts=%d error=%r",
                entry.alert_id,
                entry.channel,
                entry.target,
                after.attempts,
                error,
            )
        elif outcome == "retried":
            assert after.next_attempt_at is not None
            log.warning(
                "alert_delivery_error alert=%s channel=%s to=%s attempt=%d error=%r next_at=%s",
                entry.alert_id,
                entry.channel,
                entry.target,
                after.attempts,
                error,
                after.next_attempt_at.isoformat(),
            )

    async def _settle(self, entry: OutboxEntry, after: OutboxEntry, attempt: Attempt) -> None:
        """The ledger and the outbox after a try: confirmed and recorded, or released and recorded."""
        args = (entry.student_id, entry.alert_id, entry.target)
        if attempt is Attempt.SENT:
            await asyncio.to_thread(self.ledger.confirm, *args)
        else:
            await asyncio.to_thread(self.ledger.release, *args)
        await self._write(after)

    async def _write(self, entry: OutboxEntry) -> None:
        await self.sink.write("alert_outbox", outbox_store.write_entries, self.store, [entry])

    async def _attempt(self, message: OutboxMessage) -> tuple[Attempt, str]:
        """One try of one message: how it ended, and the error's words."""
        lead = message.alerts[0]
        directory = self.directory()
        known = message.channel == "email" and message.target in directory
        staff = directory.get(message.target) if known else None
        url = self.webhooks.get(message.target, "")
        if message.channel == "email" and (staff is None or self.mailer is None):
            return Attempt.REFUSED, "the recipient is no longer in the staff directory, or email is off"
        if message.channel == "webhook" and not url:
            return Attempt.REFUSED, "the webhook is no longer configured (LDE_ALERT_WEBHOOK_URLS)"
        target = Target(message.channel, message.target, staff=staff, url=url)
        name = self.student_name(lead.student_id)
        try:
            entitled = directory.entitled(lead)
            await asyncio.to_thread(self._send, message.alerts, name, entitled, target)
        except DeliveryError as error:
            return (Attempt.REFUSED if error.permanent else Attempt.FAILED), str(error)
        except Exception as error:  # a bug: loud, and the delivery stays in the outbox until the deadline
            log.exception("alert_delivery_crashed alert=%s error=%r", lead.alert_id, error)
            return Attempt.FAILED, repr(error)
        reader = staff.staff_id if staff else f"webhook:{target.key}"
        await asyncio.to_thread(
            self.reads.record, reader, Action.ALERT_DELIVERY, target.channel, [lead.student_id]
        )
        return Attempt.SENT, ""

    def _send(self, alerts: Sequence[Alert], name: str, entitled: list[Staff], target: Target) -> None:
        """One email for the alerts (a student's of one day); a webhook gets each in its own POST."""
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
