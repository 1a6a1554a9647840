"""The one gateway every read of personal data goes through: the access policy (models.access)
decides, and every read, allowed or refused, is audited once, stamped by the injected clock.

Readers: the HTTP API and the CLI (ops.jobs.reports.personal), the staff web app (ops.staff.web), the
weekly and the student's own reports, and alert delivery (ops.runtime.delivery). Nothing else writes
access-audit rows (tests/unit/ops/jobs/test_audited.py checks the callers).

The clock is the wall clock in the service even when the stream runs on event time: an audit row
says when a person read, not which simulated day it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import redis

from models.access import Action, AuditEntry, Outcome, Staff, StudentRef, audit, require
from models.clock import Clock, WallClock
from sinks.audit_spool import AuditSpool
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.students import access_scope

T = TypeVar("T")


class UnknownStudent(LookupError):
    """The student is not on the roster (or, for a week's report, not enrolled that week)."""

    def __init__(self, student_id: str) -> None:
        super().__init__(f"no student {student_id} on the roster")
        self.student_id = student_id


def not_visible(student_id: str) -> str:
    """The one answer to a student outside the viewer's scope AND to one not on the roster (issue 22):
    the same words, so the answer tells nobody which students exist."""
    return f"no student {student_id} among the students you may see"


@dataclass(frozen=True, slots=True)
class Subject:
    """What the access policy decides on for one student (a StudentRef)."""

    student_id: str
    personal_tutor_id: str
    programme_code: str
    school: str


class AuditedReads:
    """Admits or refuses a read of personal data and writes its audit row. Blocking (the writer is
    ClickHouse's); call it off the event loop."""

    def __init__(
        self,
        write: Callable[[Sequence[AuditEntry]], None],
        subject_of: Callable[[str], StudentRef | None],
        clock: Clock,
        spool: AuditSpool | None = None,
    ) -> None:
        self._write = write
        self.subject_of = subject_of
        self.clock = clock
        #: Where rows wait for ClickHouse, when they are spooled (its owner drains it).
        self.spool = spool

    @classmethod
    def of_store(
        cls, store: ClickHouseStore, clock: Clock | None = None, spool_in: redis.Redis | None = None
    ) -> AuditedReads:
        """The gateway over ClickHouse: the roster's students table decides, access_audit records.
        With `spool_in` (a long-running process's Redis) rows are spooled there and `spool.drain`
        stores them, one insert a second instead of one per read (sinks.audit_spool)."""

        def subject_of(student_id: str) -> Subject | None:
            found = access_scope(store, student_id)
            return None if found is None else Subject(*found)

        if spool_in is None:
            return cls(store.write_audit, subject_of, clock or WallClock())
        spool = AuditSpool(spool_in, store.write_audit)
        return cls(spool.push, subject_of, clock or WallClock(), spool)

    def now(self) -> datetime:
        at = self.clock.now()
        if at is None:  # a bug in the wiring: audit rows need an instant (give the wall clock)
            raise RuntimeError("the audit clock has no time yet: give the gateway the wall clock")
        return at

    def stamp(
        self,
        reader: Staff | str,
        action: Action,
        via: str,
        student_ids: Sequence[str],
        outcome: Outcome = Outcome.ALLOWED,
        credential: str = "",
    ) -> AuditEntry:
        """One read's audit row, stamped now; `write` stores it (a job that batches its rows)."""
        return audit(self.now(), reader, action, via, student_ids, outcome, credential)

    def write(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            self._write(list(entries))

    def record(
        self,
        reader: Staff | str,
        action: Action,
        via: str,
        student_ids: Sequence[str],
        credential: str = "",
    ) -> None:
        """Audit an allowed read of these students (a list, a page, a delivery, an export: [])."""
        self.write([self.stamp(reader, action, via, student_ids, credential=credential)])

    def refuse(
        self, reader: Staff | str, action: Action, via: str, student_ids: Sequence[str], credential: str = ""
    ) -> None:
        """Audit a refused read the caller decided on (a programme page out of scope: [])."""
        self.write([self.stamp(reader, action, via, student_ids, Outcome.REFUSED, credential)])

    def admit(
        self, viewer: Staff, subject: StudentRef, action: Action, via: str, credential: str = ""
    ) -> None:
        """Raise AccessDenied, audited as refused, unless the policy lets the viewer see the student."""
        try:
            require(viewer, subject)
        except PermissionError:
            entry = self.stamp(viewer, action, via, [subject.student_id], Outcome.REFUSED, credential)
            self.write([entry])
            raise

    def student(
        self,
        viewer: Staff,
        student_id: str,
        action: Action,
        via: str,
        read: Callable[[], T],
        credential: str = "",
    ) -> T:
        """`read()` about one student, if the policy allows it; audited once either way.

        Raises UnknownStudent (not audited: there is nobody to have read about) for a student not on
        the roster, except for the operator, who may read about an orphan to find it; AccessDenied
        (audited as refused); or whatever `read` raises (then nothing was read, nothing audited).
        """
        subject = self.subject_of(student_id)
        if subject is None and not viewer.operator:
            raise UnknownStudent(student_id)
        if subject is not None:
            self.admit(viewer, subject, action, via, credential)
        result = read()
        self.record(viewer, action, via, [student_id], credential)
        return result
