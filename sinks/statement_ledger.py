"""Redis: the xAPI statement ledger, every accepted statement id with what a void or a 409 needs.

Two keys a statement, both expiring after LDE_XAPI_LEDGER_DAYS:
- `lde:xapi-stmt:{statement id}` holds the entry (models.xapi_statements.Entry: kind, content digest,
  student, source, time, voided by): a void and a re-sent id are resolved by the id alone, since a
  voiding statement's actor is usually not the student;
- `lde:xapi:{student}:{statement id}` names the student, so retention (`forget`) and `lde privacy
  check` find the student's statements by a key pattern, as for the alert ledger.
`forget` deletes both; `holding` also reads the entries' values, so a privacy check would find an
entry whose student key had gone (it never should).

Unlike the alert ledger there is no in-memory fallback: without Redis the resource cannot tell a
conflict or a void, so the request is answered 503 and retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import redis

from models.xapi_statements import Entry

ENTRY_PREFIX = "lde:xapi-stmt:"
STUDENT_PREFIX = "lde:xapi:"


class StatementLedger:
    def __init__(self, client: redis.Redis, ttl_days: int | None = None) -> None:
        """ttl_days: how long new entries live (LDE_XAPI_LEDGER_DAYS); None for a ledger that only reads
        and erases (retention, the privacy check)."""
        self.client = client
        self.ttl_seconds = None if ttl_days is None else ttl_days * 24 * 3600

    def entries(self, statement_ids: Iterable[str]) -> dict[str, Entry]:
        """The entries known for these ids (unknown ids are left out); one round trip."""
        ids = list(statement_ids)
        if not ids:
            return {}
        values = self.client.mget([ENTRY_PREFIX + i for i in ids])
        return {i: Entry.from_json(v) for i, v in zip(ids, values, strict=True) if v is not None}

    def add(self, new: Mapping[str, Entry]) -> dict[str, Entry]:
        """Record new entries unless their id was taken meanwhile (SET NX: another request, another
        worker); returns the entries found in the way, for the caller to resolve. One round trip,
        plus one for the ids taken meanwhile (rare)."""
        if not new:
            return {}
        assert self.ttl_seconds is not None, "a ledger that records needs LDE_XAPI_LEDGER_DAYS"
        pipe = self.client.pipeline(transaction=False)
        ids = list(new)
        for statement_id in ids:
            entry = new[statement_id]
            pipe.set(ENTRY_PREFIX + statement_id, entry.to_json(), nx=True, ex=self.ttl_seconds)
            if entry.student_id is not None:
                pipe.set(f"{STUDENT_PREFIX}{entry.student_id}:{statement_id}", 1, ex=self.ttl_seconds)
        results = iter(pipe.execute())
        lost = []
        for statement_id in ids:
            if not next(results):
                lost.append(statement_id)
            if new[statement_id].student_id is not None:
                next(results)
        return self.entries(lost)

    def replace(self, updated: Mapping[str, Entry]) -> None:
        """Overwrite entries (a void recorded on its target), keeping their expiry."""
        if not updated:
            return
        assert self.ttl_seconds is not None, "a ledger that records needs LDE_XAPI_LEDGER_DAYS"
        pipe = self.client.pipeline(transaction=False)
        for statement_id, entry in updated.items():
            pipe.set(ENTRY_PREFIX + statement_id, entry.to_json(), keepttl=True)
            if entry.student_id is not None:
                pipe.set(f"{STUDENT_PREFIX}{entry.student_id}:{statement_id}", 1, ex=self.ttl_seconds)
        pipe.execute()

    def forget(self, student_ids: Iterable[str]) -> int:
        """Delete every key of these students (retention); returns how many keys were deleted."""
        deleted = 0
        for student_id in student_ids:
            prefix = f"{STUDENT_PREFIX}{student_id}:"
            handles = list(self.client.scan_iter(match=_escaped(prefix) + "*", count=1000))
            if not handles:
                continue
            ids = [(h.decode() if isinstance(h, bytes) else h)[len(prefix) :] for h in handles]
            deleted += int(self.client.delete(*handles, *(ENTRY_PREFIX + i for i in ids)))
        return deleted

    def holding(self, student_id: str) -> int:
        """How many entries name this student in their value (the privacy check; a full scan)."""
        count = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=ENTRY_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                count += self._holding(batch, student_id)
                batch = []
        return count + self._holding(batch, student_id)

    def _holding(self, keys: list[bytes], student_id: str) -> int:
        if not keys:
            return 0
        values = self.client.mget(keys)
        return sum(1 for v in values if v is not None and Entry.from_json(v).student_id == student_id)


def _escaped(text: str) -> str:
    """`text` as a literal inside a SCAN MATCH pattern (a student id may hold glob characters)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
