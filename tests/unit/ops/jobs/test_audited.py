"""The audited-read gateway (ops.jobs.reports.audited): the policy decides, each read or refusal is
audited once with the right fields, stamped by the injected clock; and nothing else in the source
writes access-audit rows."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.access import AccessDenied, Action, AuditEntry, Grant, Outcome, Role, Staff
from ops.jobs.reports.audited import AuditedReads, Subject, UnknownStudent

ROOT = Path(__file__).resolve().parents[4]
AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
TUTOR = Staff("T1", "Tia", "t@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
OPERATOR = Staff.as_operator()
ROSTER = {
    "S1": Subject("S1", "T1", "BSC-MATH", "SCI"),  # Tia's tutee
    "S2": Subject("S2", "T2", "BSC-MATH", "SCI"),  # someone else's
}


class FixedClock:
    def __init__(self, at: datetime | None) -> None:
        self.at = at

    def now(self) -> datetime | None:
        return self.at


def gateway(at: datetime | None = AT) -> tuple[AuditedReads, list[AuditEntry]]:
    written: list[AuditEntry] = []

    def write(entries: Sequence[AuditEntry]) -> None:
        written.extend(entries)

    return AuditedReads(write, ROSTER.get, FixedClock(at)), written


class Reader:
    """A read that counts its calls."""

    def __init__(self, fails: Exception | None = None) -> None:
        self.calls = 0
        self.fails = fails

    def __call__(self) -> str:
        self.calls += 1
        if self.fails is not None:
            raise self.fails
        return "figures"


def test_an_allowed_read_is_made_and_audited_once() -> None:
    reads, written = gateway()
    read = Reader()
    assert reads.student(TUTOR, "S1", Action.STUDENT_VIEW, "http", read, "session") == "figures"
    assert read.calls == 1
    assert written == [AuditEntry(AT, "T1", Action.STUDENT_VIEW, "http", ("S1",), Outcome.ALLOWED, "session")]


def test_a_refused_read_is_not_made_and_audited_once_as_refused() -> None:
    reads, written = gateway()
    read = Reader()
    with pytest.raises(AccessDenied):
        reads.student(TUTOR, "S2", Action.ACTIVITY_VIEW, "web", read, "api-token:abc")
    assert read.calls == 0
    assert written == [
        AuditEntry(AT, "T1", Action.ACTIVITY_VIEW, "web", ("S2",), Outcome.REFUSED, "api-token:abc")
    ]


def test_a_student_not_on_the_roster_is_unknown_to_staff_and_readable_by_the_operator() -> None:
    reads, written = gateway()
    read = Reader()
    with pytest.raises(UnknownStudent):
        reads.student(TUTOR, "S9", Action.STUDENT_VIEW, "cli", read)
    assert read.calls == 0 and written == []  # nobody was read about
    assert reads.student(OPERATOR, "S9", Action.ACTIVITY_VIEW, "cli", read) == "figures"  # an orphan to find
    assert written == [AuditEntry(AT, OPERATOR.staff_id, Action.ACTIVITY_VIEW, "cli", ("S9",))]


def test_a_read_that_fails_is_not_audited_as_made() -> None:
    reads, written = gateway()
    with pytest.raises(UnknownStudent):
        reads.student(TUTOR, "S1", Action.STUDENT_VIEW, "http", Reader(UnknownStudent("S1")))
    assert written == []


def test_lists_pages_and_deliveries_are_recorded_with_their_students_sorted_once() -> None:
    reads, written = gateway()
    reads.record(TUTOR, Action.CASELOAD, "web", ["S3", "S1", "S3"])
    reads.record("webhook:abc", Action.ALERT_DELIVERY, "webhook", ["S1"])
    reads.record(TUTOR, Action.EXPORT_ANONYMISED, "cli", [])
    assert written == [
        AuditEntry(AT, "T1", Action.CASELOAD, "web", ("S1", "S3")),
        AuditEntry(AT, "webhook:abc", Action.ALERT_DELIVERY, "webhook", ("S1",)),
        AuditEntry(AT, "T1", Action.EXPORT_ANONYMISED, "cli", ()),
    ]


def test_admit_decides_on_the_subject_given_and_audits_only_a_refusal() -> None:
    reads, written = gateway()
    reads.admit(TUTOR, ROSTER["S1"], Action.STUDENT_REPORT, "cli")
    assert written == []  # the caller records the read once it is made
    with pytest.raises(AccessDenied):
        reads.admit(TUTOR, ROSTER["S2"], Action.STUDENT_REPORT, "cli")
    assert written == [AuditEntry(AT, "T1", Action.STUDENT_REPORT, "cli", ("S2",), Outcome.REFUSED)]


def test_a_batch_is_stamped_per_read_and_written_once_and_an_empty_batch_not_at_all() -> None:
    reads, written = gateway()
    first = reads.stamp(TUTOR, Action.WEEKLY_REPORT, "email", ["S1"])
    reads.clock = FixedClock(datetime(2026, 11, 2, 9, 31, tzinfo=UTC))
    second = reads.stamp(TUTOR, Action.WEEKLY_REPORT, "email", ["S2"])
    reads.write([])
    assert written == []
    reads.write([first, second])
    assert [e.at.minute for e in written] == [30, 31]


def test_a_clock_without_time_is_a_wiring_bug_not_an_unstamped_row() -> None:
    reads, written = gateway(at=None)
    with pytest.raises(RuntimeError, match="wall clock"):
        reads.record(TUTOR, Action.ALERTS_LIST, "http", ["S1"])
    assert written == []


# -- nobody else writes audit rows ----------------------------------------------------------------------

#: Where audit rows may be built or written: the gateway, the row's definition, the store's writer.
#: The spool carries the gateway's rows unchanged from Redis to the store (sinks.audit_spool).
ALLOWED = {
    "ops/jobs/reports/audited.py",
    "models/access.py",
    "sinks/clickhouse/store.py",
    "sinks/audit_spool.py",
}
#: Building an audit row (`audit(...)`, `AuditEntry(...)`) or reaching the store's writer.
WRITERS = {"audit", "AuditEntry", "write_audit"}


def writers_in(source: str) -> list[str]:
    """What in `source` builds or writes an audit row: a call of audit/AuditEntry, any use of
    write_audit (a call, or the writer handed on as a callback), an import of `audit`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"audit", "AuditEntry"}:
                found.append(f"line {node.lineno}: {name}(...)")
        elif isinstance(node, ast.Attribute) and node.attr == "write_audit":
            found.append(f"line {node.lineno}: .write_audit")
        elif isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name == "audit"]
    return found


def test_the_finder_sees_every_way_of_writing_a_row() -> None:
    source = (
        "from models.access import audit\n"
        "store.write_audit([audit(now, viewer, action, 'web', ids)])\n"
        "notifier = Notifier(write=store.write_audit)\n"
        "entry = AuditEntry(now, 'T1', action, 'web', ())\n"
        "rows: list[AuditEntry] = []\n"  # naming the type is no write
    )
    assert sorted(writers_in(source)) == [
        "line 1: import audit",
        "line 2: .write_audit",
        "line 2: audit(...)",
        "line 3: .write_audit",
        "line 4: AuditEntry(...)",
    ]


def test_no_module_but_the_gateway_writes_audit_rows() -> None:
    offenders = {}
    for layer in ("models", "sinks", "streams", "ops"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name not in ALLOWED and (found := writers_in(path.read_text())):
                offenders[name] = found
    assert offenders == {}, "audit rows are written only by ops.jobs.reports.audited.AuditedReads"
