"""Reading a CSV export with a header row: what every CSV format shares (positions, raw text, checks)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from zoneinfo import ZoneInfo

from models.adapters.base import BadRecord, Invalid, Outcome, Record, settle


class LineTap:
    """The lines the csv reader consumes, so each record knows its first line and raw text."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._count = 0
        self._pending: list[str] = []

    def __iter__(self) -> LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._count += 1
        if self._count == 1:
            line = line.removeprefix("\ufeff")  # a UTF-8 BOM decoded as text
        self._pending.append(line)
        return line

    def take(self) -> tuple[int, str]:
        """(first line number, raw text) of the lines consumed since the last take."""
        first = self._count - len(self._pending) + 1
        raw = "".join(self._pending).rstrip("\r\n")
        self._pending = []
        return first, raw


RowConverter = Callable[[Mapping[str, str], ZoneInfo], Outcome]


def read_csv(
    lines: Iterable[str],
    required: tuple[str, ...],
    convert: RowConverter,
    tz: ZoneInfo,
    *,
    column: Callable[[str], str] | None = None,
) -> Iterator[Record]:
    """Stream a CSV export with a header row; each data row becomes one result at "line N".

    `column` names a header field (e.g. DAP's "value.user_id" -> "user_id"); the first of two fields
    with the same name wins.

    A header without a required column makes every row Invalid (loudly: the export changed). A row
    with a different number of fields than the header is Invalid rather than read with shifted columns.
    """
    tap = LineTap(lines)
    reader = csv.reader(tap)
    header: list[str] | None = None
    missing = ""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line, raw = tap.take()
            yield Invalid(f"line {line}", f"unreadable CSV: {error}", raw)
            continue
        line, raw = tap.take()
        if not any(field.strip() for field in fields):
            continue
        position = f"line {line}"
        if header is None:
            header = [field.strip() for field in fields]
            if column is not None:
                header = [column(name) for name in header]
            missing = ", ".join(name for name in required if name not in header)
            if missing:
                yield Invalid(position, f"header lacks column(s): {missing}", raw)
            continue
        if missing:
            yield Invalid(position, f"header lacks column(s): {missing}", raw)
            continue
        if len(fields) != len(header):
            yield Invalid(position, f"{len(fields)} fields where the header has {len(header)}", raw)
            continue
        row: dict[str, str] = {}
        for name, value in zip(header, fields, strict=True):
            row.setdefault(name, value)
        yield settle(position, partial(str, raw), partial(convert, row, tz))


def required_field(row: Mapping[str, str], name: str) -> str:
    value = row.get(name, "").strip()
    if not value:
        raise BadRecord(f"{name}: missing")
    return value
