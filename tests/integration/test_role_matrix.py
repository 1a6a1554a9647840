"""The role matrix on real chDB, a real SMTP server and a real webhook receiver: for each role and
sample member of staff, exactly the students in scope appear in their weekly report (HTML, text and
PDF), in the alerts they are sent, and in what the commands show them; no other student's name or id
appears anywhere in what they receive. The expected scopes are written out here from the rules in
the issue, not computed with the policy under test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from models.access import Role
from models.alerts import Alert
from models.outbox import DeliveryPolicy
from ops import cli
from ops.jobs.reports.audited import AuditedReads
from ops.jobs.reports.weekly import ReportJob, SmtpDelivery, load_directory
from ops.metrics import Metrics
from ops.runtime.delivery import AlertNotifier
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.faults import FaultSwitch
from sinks.mail import SmtpMailer
from sinks.redis_store import DeliveryLedger
from sinks.retry import ClickHouseSink
from tests.integration import report_data
from tests.integration.mailhelpers import parts, pdf_text, smtp_server, webhook_server

pytestmark = pytest.mark.integration

CS_SAMPLE = {"900412771", "900201777"}
CS_EXTRA = {f"9007000{i:02d}" for i in range(10)}
PSY_EXTRA = {f"9008000{i:02d}" for i in range(3)}
TOMASZ, AMINA, ZOE = "900398004", "900555123", "900188420"  # Zoe left in March 2026
#: Who appears in each member of staff's 2026-W47 report (Zoe had left, so she is in no report).
REPORT_SCOPE = {
    "S1042": CS_SAMPLE,  # personal tutor: own tutees only
    "S2210": {TOMASZ},
    "S3301": {AMINA},
    "S1001": CS_SAMPLE | CS_EXTRA,  # programme leader BSC-CS
    "S2001": {TOMASZ} | PSY_EXTRA,  # programme leader BSC-PSY
    "S1000": CS_SAMPLE | CS_EXTRA,  # director, School of Computer Science and Mathematics
    "S9001": CS_SAMPLE | CS_EXTRA | PSY_EXTRA | {TOMASZ, AMINA},  # institution
}
#: Who each may look up with the commands (students who left are still personal data in scope).
COMMAND_SCOPE = {
    k: v | ({ZOE} if k in ("S2210", "S2001", "S9001") else set()) for k, v in REPORT_SCOPE.items()
}
SILENT_ALERTS = {"900201777", "900700003"}  # the two alerts raised in the week


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ClickHouseStore, Path, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("matrix")
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    clickhouse.migrate(store.client)
    students = report_data.seed(store)
    names = {s.student_id: f"{s.given_name} {s.family_name}" for s in students}
    yield store, data_dir, names
    store.close()


def leaks(text: str, allowed: set[str], names: dict[str, str]) -> set[str]:
    """Ids of students outside `allowed` whose id or name appears in the text."""
    return {sid for sid, name in names.items() if sid not in allowed and (sid in text or name in text)}


def shows(text: str, sid: str, names: dict[str, str]) -> bool:
    return sid in text and names[sid] in text


def test_weekly_reports_hold_exactly_the_students_in_scope(
    seeded: tuple[ClickHouseStore, Path, dict[str, str]],
) -> None:
    store, data_dir, names = seeded
    directory = load_directory(store)
    with smtp_server() as (inbox, port):
        mailer = SmtpMailer("127.0.0.1", port, "none")
        run = ReportJob(store, Settings(data_dir=data_dir), retry_delays=()).run(
            report_data.WEEK, SmtpDelivery(mailer, "LDE <lde@example.ac.uk>")
        )
        mailer.close()
    assert run.delivered == 7 and run.failures == {}
    assert len(inbox.messages) == 7
    for staff_id, scope in REPORT_SCOPE.items():
        staff = directory.get(staff_id)
        mine = inbox.to(staff.email)
        assert len(mine) == 1, staff_id
        [message] = mine
        assert message["To"].addresses[0].addr_spec == staff.email
        text, html, pdf = parts(message)
        pdf_words = pdf_text(pdf)
        assert pdf.startswith(b"%PDF")
        for body in (text, html, pdf_words):
            assert {sid for sid in names if shows(body, sid, names)} == scope, staff_id
            assert leaks(body, scope, names) == set(), staff_id
        assert leaks(message["Subject"], scope, names) == set()
    # every delivered report is audited with exactly its students
    audited = {r[1]: set(r[4]) for r in store.audit_rows() if r[2] == "weekly_report"}
    assert audited == REPORT_SCOPE


def test_alerts_go_only_to_the_staff_entitled(seeded: tuple[ClickHouseStore, Path, dict[str, str]]) -> None:
    store, _, names = seeded
    directory = load_directory(store)
    alerts = [Alert.model_validate(a) for a in store.alerts() if a["student_id"] in SILENT_ALERTS]
    assert len(alerts) == 2
    with smtp_server() as (inbox, port), webhook_server() as (hooks, url):
        notifier = AlertNotifier(
            directory=lambda: directory,
            ledger=DeliveryLedger(None),
            store=store,
            sink=ClickHouseSink(Metrics(), FaultSwitch(None), 1.0),
            metrics=Metrics(),
            policy=DeliveryPolicy(timedelta(seconds=1), timedelta(minutes=10), timedelta(hours=24)),
            poll_seconds=0.1,
            reads=AuditedReads.of_store(store),
            student_name=lambda sid: names.get(sid, ""),
            mailer=SmtpMailer("127.0.0.1", port, "none"),
            sender="lde@example.ac.uk",
            webhook_urls=[url],
            email_roles=frozenset(Role),
        )
        asyncio.run(notifier.record(alerts))  # the outbox, as the alerts agent records it
        asyncio.run(notifier.drain_once())
    for staff_id, scope in REPORT_SCOPE.items():
        staff = directory.get(staff_id)
        received = inbox.to(staff.email)
        expected = scope & SILENT_ALERTS
        assert len(received) == len(expected), staff_id
        for message in received:
            text, html, _ = parts(message)
            for body in (text, html, message["Subject"]):
                assert leaks(body, expected, names) == set()
            assert any(shows(text, sid, names) for sid in expected)
    # the webhook carries each alert once, naming exactly the staff entitled to it
    assert sorted(h["student_id"] for h in hooks.received) == sorted(SILENT_ALERTS)
    for hook in hooks.received:
        entitled = {r["staff_id"] for r in hook["recipients"]}
        assert entitled == {s for s, scope in REPORT_SCOPE.items() if hook["student_id"] in scope}
        assert leaks(json.dumps(hook), {hook["student_id"]}, names) == set()


def test_commands_show_exactly_the_students_in_scope(
    seeded: tuple[ClickHouseStore, Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, data_dir, names = seeded
    monkeypatch.setenv("LDE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LDE_WEB_PORT", "9")  # no service there: the commands open chDB themselves
    for staff_id, scope in COMMAND_SCOPE.items():
        capsys.readouterr()
        assert cli.main(["alerts", "--as", staff_id, "--format", "jsonl"]) == 0
        out = capsys.readouterr().out
        rows = [json.loads(line) for line in out.splitlines()]
        assert {r["student_id"] for r in rows} == scope & SILENT_ALERTS, staff_id
        assert leaks(out, scope, names) == set()
        for sid in names:
            code = cli.main(["student", "show", sid, "--as", staff_id])
            captured = capsys.readouterr()
            if sid in scope:
                assert code == 0 and names[sid] in captured.out
                assert leaks(captured.out, {sid}, names) == set()
            else:
                assert code == 3, (staff_id, sid)
                assert f"{staff_id} (" in captured.err and "may not see student" in captured.err
                assert names[sid] not in captured.out + captured.err
    assert cli.main(["student", "show", TOMASZ, "--as", "S0000"]) == 2
    assert "no staff member 'S0000'" in capsys.readouterr().err
