"""The alert outbox's rules: what each delivery's record becomes after an attempt. Pure.

Every delivery of an alert (one email to one member of staff, one POST to one webhook) is an
`OutboxEntry`, recorded before the batch that raised the alert commits and then sent by a drainer. An
entry is `pending` until the server accepts it (`sent`) or until the deadline passes or the server
refuses it for good (`dead`: dead-lettered, counted, and shown to operators and staff).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Attempt(StrEnum):
    """How one try ended."""

    SENT = "sent"
    FAILED = "failed"  # worth trying again (a server down, a timeout, a 5xx)
    REFUSED = "refused"  # never worth trying again (an address refused, a 4xx)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How long and how often a delivery is tried: back-off doubling from `first` up to `cap`, for
    `deadline` after the entry was recorded."""

    first: timedelta
    cap: timedelta
    deadline: timedelta

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try (1: `first`)."""
        factor = 2 ** min(max(attempts - 1, 0), 40)
        return min(self.first * factor, self.cap)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One delivery of one alert, as recorded. `version` orders the records of one delivery: the
    highest is the current state (ClickHouse ReplacingMergeTree), so a first record written again
    (an alert re-consumed) never overrides a later state."""

    alert_id: str
    student_id: str
    channel: str  # "email" or "webhook"
    target: str  # staff id, or the digest of a webhook URL
    recorded_at: datetime
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None  # None: at once
    last_error: str = ""
    version: int = 0
    alert_json: str = ""  # the alert as raised, so the drainer needs nothing else to render it

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a delivery unique (the outbox is idempotent by it)."""
        return (self.alert_id, self.channel, self.target)

    def due(self, now: datetime) -> bool:
        """Whether a drainer should try it now."""
        if self.status is not OutboxStatus.PENDING:
            return False
        return self.next_attempt_at is None or self.next_attempt_at <= now


def after_attempt(
    entry: OutboxEntry, attempt: Attempt, now: datetime, policy: DeliveryPolicy, error: str = ""
) -> OutboxEntry:
    """The entry's record after one try that ended as `attempt` at `now`.

    Sent: `sent`. Refused for good: `dead` at once. Failed: `pending` with the next try after the
    back-off, unless that try would fall past the deadline, then `dead`.
    """
    attempts = entry.attempts + 1
    base = replace(entry, attempts=attempts, version=entry.version + 1, last_error=error[:500])
    if attempt is Attempt.SENT:
        return replace(base, status=OutboxStatus.SENT, next_attempt_at=None, last_error="")
    if attempt is Attempt.REFUSED:
        return replace(base, status=OutboxStatus.DEAD, next_attempt_at=None)
    next_at = now + policy.delay(attempts)
    if next_at > entry.recorded_at + policy.deadline:
        return replace(base, status=OutboxStatus.DEAD, next_attempt_at=None)
    return replace(base, status=OutboxStatus.PENDING, next_attempt_at=next_at)


def already_sent(entry: OutboxEntry) -> OutboxEntry:
    """The record of a delivery that another process made (its ledger says sent) but did not record."""
    return replace(entry, status=OutboxStatus.SENT, next_attempt_at=None, version=entry.version + 1)


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """What operators and staff see: how many deliveries wait or were given up, and since when."""

    pending: int = 0
    dead: int = 0
    oldest_pending_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        oldest = self.oldest_pending_at
        return {
            "pending": self.pending,
            "dead": self.dead,
            "oldest_pending_at": oldest.isoformat() if oldest else None,
        }


def undelivered_notice(pending: int, dead: int) -> str:
    """What the web app tells a member of staff about alert emails to them not delivered ("" when
    none): pending ones are still being tried; dead ones will not arrive."""
    parts = []
    if pending:
        plural = "s" if pending != 1 else ""
        parts.append(f"{pending} alert email{plural} to you not delivered yet (still being tried)")
    if dead:
        parts.append(f"{dead} could not be delivered: the alerts are listed on your students' pages")
    return "; ".join(parts) + ("." if parts else "")
