"""`lde ingest`: read a file (or stdin) in a named format, publish canonical events in envelopes.

Streaming: a file larger than memory works. A bad record costs only itself (it is dead-lettered with
the reason and its line); a guard stops the ingest when the invalid share says the upstream is broken.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from models.activity import fingerprint
from models.events import ActivityEvent, InvalidMessage, parse_event
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


def read_lde_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, str, ActivityEvent | InvalidMessage]]:
    """Canonical events, one JSON object per line: (line number, raw line, event or error)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, line, parse_event(line)
        except InvalidMessage as error:
            yield number, line, error


def ingest_lde_jsonl(
    handle: IO[str], publisher: Publisher, name: str, guard: InvalidShareGuard | None = None
) -> IngestSummary:
    """Publish a canonical JSONL stream in envelopes; returns the counts."""
    summary = IngestSummary()
    guard = guard or InvalidShareGuard()
    seen: set[int] = set()
    pending: list[ActivityEvent] = []
    for number, line, item in read_lde_jsonl(handle):
        if isinstance(item, InvalidMessage):
            summary.invalid += 1
            publisher.send_dead_letter(line.encode(), item.reason, "lde-jsonl", f"{name}:{number}")
            guard.observe(False)
            continue
        guard.observe(True)
        mark = fingerprint(item.event_id)
        if mark in seen:
            summary.duplicates += 1
            continue
        seen.add(mark)
        pending.append(item)
        summary.accepted += 1
        if len(pending) >= 10_000:
            summary.messages += publisher.send_events(pending)
            pending = []
    if pending:
        summary.messages += publisher.send_events(pending)
    publisher.flush()
    return summary
