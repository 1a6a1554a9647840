"""Which alerts are announced together: at most one message per student per day, in a fixed order.

Pure. A student's alerts of one day (say low attendance and low engagement found together) reach a
tutor as one message, and every reader of alerts (replay output, delivery) lists them in the same
order, so two runs of the same history write the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from models.alerts import Alert, Rule
from models.outbox import OutboxEntry

#: The order a tutor reads one student's alerts of a day in: the news first (a silence, then the
#: comparative rules), then the reminder, then the good news.
RULE_ORDER: dict[str, int] = {
    rule.value: n
    for n, rule in enumerate(
        (Rule.NO_ENGAGEMENT, Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE, Rule.ESCALATION, Rule.RE_ENGAGED)
    )
}


def order_key(
    raised_on: str, student_id: str, rule: str, about_rule: str | None, alert_id: str
) -> tuple[str, str, int, str, str]:
    """A total order of alerts: by day, student, rule (RULE_ORDER), the rule an escalation or a
    re-engagement is about, and last the alert id, so no two alerts ever tie."""
    return raised_on, student_id, RULE_ORDER.get(rule, len(RULE_ORDER)), about_rule or "", alert_id


def alert_order(alert: Alert) -> tuple[str, str, int, str, str]:
    """order_key of an Alert."""
    about = alert.about_rule.value if alert.about_rule is not None else None
    return order_key(alert.raised_on.isoformat(), alert.student_id, alert.rule.value, about, alert.alert_id)


@dataclass(frozen=True, slots=True)
class Announcement:
    """One message about one student: their alerts of one day, in order (at least one)."""

    student_id: str
    day: date
    alerts: tuple[Alert, ...]

    @property
    def lead(self) -> Alert:
        """The alert the message is headed by (the first in order)."""
        return self.alerts[0]


def announcements(alerts: Iterable[Alert]) -> list[Announcement]:
    """The alerts grouped into messages: one per student and day raised, in order; an alert given
    twice (a re-read batch) is announced once."""
    unique = {alert.alert_id: alert for alert in alerts}
    grouped: dict[tuple[str, date], list[Alert]] = {}
    for alert in sorted(unique.values(), key=alert_order):
        grouped.setdefault((alert.student_id, alert.raised_on), []).append(alert)
    return [Announcement(sid, day, tuple(group)) for (sid, day), group in grouped.items()]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message the outbox's drainer makes: its deliveries (one per alert, same channel and
    recipient) and their alerts, in announcement order."""

    entries: tuple[OutboxEntry, ...]
    alerts: tuple[Alert, ...]

    @property
    def channel(self) -> str:
        return self.entries[0].channel

    @property
    def target(self) -> str:
        return self.entries[0].target


def outbox_messages(entries: Iterable[OutboxEntry]) -> list[OutboxMessage]:
    """Due deliveries grouped into messages: an email carries one student's alerts of one day to one
    recipient (as `announcements`); a webhook, read by a machine, gets each alert in a POST of its own.
    Each delivery is still claimed, confirmed and recorded on its own by the drainer."""
    grouped: dict[tuple[str, ...], list[tuple[Alert, OutboxEntry]]] = {}
    for entry in entries:
        alert = Alert.model_validate_json(entry.alert_json)
        apart = entry.alert_id if entry.channel != "email" else ""
        key = (entry.channel, entry.target, alert.student_id, alert.raised_on.isoformat(), apart)
        grouped.setdefault(key, []).append((alert, entry))
    messages = []
    for pairs in grouped.values():
        pairs.sort(key=lambda pair: alert_order(pair[0]))
        messages.append(OutboxMessage(tuple(e for _, e in pairs), tuple(a for a, _ in pairs)))
    messages.sort(key=lambda message: alert_order(message.alerts[0]))
    return messages
