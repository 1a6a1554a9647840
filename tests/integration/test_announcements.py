"""One email per student per day (issue 24.5), through the alert outbox (issue 23): a real SMTP
server, the outbox in chDB and the delivery ledger on real Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from models.access import Grant, Role, Staff, StaffDirectory
from models.alerts import Rule
from models.outbox import DeliveryPolicy
from ops.jobs.reports.audited import AuditedReads
from ops.metrics import Metrics
from ops.runtime.delivery import AlertNotifier
from sinks.clickhouse import ClickHouseStore
from sinks.faults import FaultSwitch
from sinks.mail import SmtpMailer
from sinks.redis_store import AlertLedger, DeliveryLedger
from sinks.retry import ClickHouseSink
from tests.integration.mailhelpers import parts, smtp_server
from tests.unit.models.test_announcements import alert

pytestmark = pytest.mark.integration
TUTOR = Staff("T1", "Dr Ann Tutor", "tutor@example.ac.uk", (Grant(Role.PERSONAL_TUTOR),))


def audit_rows(store: ClickHouseStore) -> int:
    return int(store.query("SELECT count() FROM access_audit WHERE action = 'alert_delivery'")[0][0])


def test_a_students_alerts_of_one_day_reach_the_tutor_as_one_email_once(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    fader = [alert("s1", Rule.LOW_ATTENDANCE), alert("s1", Rule.LOW_ENGAGEMENT)]
    other_day = alert(
        "s1", Rule.ESCALATION, day=fader[0].raised_on + timedelta(days=1), about=Rule.LOW_ENGAGEMENT
    )
    with smtp_server() as (inbox, port):
        notifier = AlertNotifier(
            directory=lambda: StaffDirectory([TUTOR]),
            ledger=DeliveryLedger(ledger.client, lease_seconds=60),
            store=store,
            sink=ClickHouseSink(Metrics(), FaultSwitch(None), 1.0),
            metrics=Metrics(),
            policy=DeliveryPolicy(timedelta(seconds=1), timedelta(minutes=10), timedelta(hours=24)),
            poll_seconds=0.1,
            reads=AuditedReads.of_store(store),
            student_name=lambda sid: "Carys Khan",
            mailer=SmtpMailer("127.0.0.1", port, "none"),
            sender="lde@example.ac.uk",
            email_roles=frozenset(Role),
        )
        asyncio.run(notifier.record([*fader, other_day]))
        assert asyncio.run(notifier.drain_once()) == 3  # three deliveries, two messages
        # Re-read (a restart, another worker): each delivery was recorded as sent, so nothing goes
        # again, whether an alert comes back alone or with the day's others.
        asyncio.run(notifier.record(fader))
        asyncio.run(notifier.record([fader[0]]))
        assert asyncio.run(notifier.drain_once()) == 0
        messages = inbox.to(TUTOR.email)
    assert len(messages) == 2  # one per day
    by_subject = {m["Subject"]: m for m in messages}
    same_day = by_subject["LDE alerts: low engagement, low attendance - Carys Khan (s1)"]
    text, html, _ = parts(same_day)
    assert text.index("low_engagement: ") < text.index("low_attendance: ")
    assert text.count("Dear Dr Ann Tutor") == 1 and text.count("do not forward") == 1
    assert "<b>low_attendance</b>" in html and html.count("do not forward") == 1
    assert audit_rows(store) == 2  # a delivery is a read: one row per message
