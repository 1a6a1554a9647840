"""`lde ingest`: read a file (or stdin) in a named format, publish canonical events in envelopes.

Streaming: a file larger than memory works. A bad record costs only itself (it is dead-lettered with
the reason and its line); a guard stops the ingest when the invalid share says the upstream is broken.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from models.activity import fingerprint
from models.adapters import ADAPTERS, Invalid, Skipped
from models.events import ActivityEvent
from ops.publish import Publisher


class UpstreamBroken(RuntimeError):
    """Too many invalid records in a row: most likely a broken upstream export, not one bad record."""


@dataclass
class IngestSummary:
    accepted: int = 0
    duplicates: int = 0
    invalid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def lines(self) -> list[str]:
        out = [
            f"accepted:   {self.accepted}",
            f"duplicates: {self.duplicates}",
            f"skipped:    {sum(self.skipped.values())}",
        ]
        out += [f"  {reason}: {n}" for reason, n in sorted(self.skipped.items())]
        out.append(f"invalid:    {self.invalid} (sent to the dead-letter topic)")
        return out


@dataclass
class InvalidShareGuard:
    """Stops when more than `limit` of the last `window` records were invalid (once `minimum` seen)."""

    limit: float = 0.05
    window: int = 1000
    minimum: int = 200
    _recent: deque[bool] = field(default_factory=deque)
    _bad: int = 0

    def observe(self, valid: bool) -> None:
        self._recent.append(valid)
        if not valid:
            self._bad += 1
        if len(self._recent) > self.window and not self._recent.popleft():
            self._bad -= 1
        if len(self._recent) >= self.minimum and self._bad / len(self._recent) > self.limit:
            raise UpstreamBroken(
                f"{self._bad} of the last {len(self._recent)} records were invalid "
                f"(limit {self.limit:.0%}): the upstream export looks broken; fix it and ingest again "
                "(records already accepted are de-duplicated when re-sent)"
            )


def ingest(
    lines: Iterable[str],
    adapter_name: str,
    publisher: Publisher,
    name: str,
    timezone: str,
    guard: InvalidShareGuard | None = None,
) -> IngestSummary:
    """Adapt a stream of lines in a named format and publish the events in envelopes.

    Skipped records (a logoff, an asset request, a non-student) are counted with their reason;
    invalid ones go to the dead-letter topic with the error, the format and the position.
    """
    adapter = ADAPTERS.get(adapter_name)
    if adapter is None:
        raise UnknownFormat(adapter_name)
    summary = IngestSummary()
    guard = guard or InvalidShareGuard()
    seen: set[int] = set()
    pending: list[ActivityEvent] = []
    for record in adapter(lines, timezone=timezone):
        if isinstance(record, Invalid):
            summary.invalid += 1
            publisher.send_dead_letter(
                redacted_record(record.raw), record.reason, adapter_name, f"{name}:{record.position}"
            )
            guard.observe(False)
            continue
        guard.observe(True)
        if isinstance(record, Skipped):
            summary.skipped[record.reason] += 1
            continue
        mark = fingerprint(record.event.event_id)
        if mark in seen:
            summary.duplicates += 1
            continue
        seen.add(mark)
        pending.append(record.event)
        summary.accepted += 1
        if len(pending) >= 10_000:
            summary.messages += publisher.send_events(pending)
            pending = []
    if pending:
        summary.messages += publisher.send_events(pending)
    publisher.flush()
    return summary


def redacted_record(raw: str) -> bytes:
    """What a dead letter keeps of an upstream record: its size and digest, never its text.

    An invalid upstream record may still hold a title or URL, and nothing private may pass the edge;
    the file and line (in the headers) identify it for the operator, who fixes and re-sends the file
    (re-sent records are de-duplicated).
    """
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return json.dumps({"redacted": True, "bytes": len(raw.encode()), "sha256": digest}).encode()


class UnknownFormat(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown format {name!r}; known: {', '.join(sorted(ADAPTERS))}")
