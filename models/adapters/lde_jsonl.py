"""Canonical LDE JSONL: the events as the stream itself writes them, one JSON object a line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.adapters.base import DEFAULT_TIMEZONE, Invalid, Parsed, Record
from models.events import InvalidMessage, parse_event


def read_lde_jsonl(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Canonical events, one JSON object per line (blank lines ignored). Times must carry an offset."""
    del timezone  # the canonical event requires an offset
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Parsed(f"line {number}", parse_event(line))
        except InvalidMessage as error:
            yield Invalid(f"line {number}", error.reason, line.rstrip("\r\n"))
