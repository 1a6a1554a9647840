"""Canvas Data 2 (Instructure's DAP): the `canvas_logs.web_logs` table, and the user map it needs.

`dap snapshot|incremental --namespace canvas_logs --table web_logs --format jsonl|csv` writes one row a
request. JSONL lines are {"key": {"id": ...}, "value": {the other columns}, "meta": {"ts": ...,
"action": "U" | "D"}}; CSV has a header row whose fields may carry the same prefixes ("key.id",
"value.user_id", "meta.action") or none. Either way a row is read from id, timestamp (UTC: a time
without an offset is UTC, as DAP's schema says), user_id, real_user_id, http_status and meta.action.
url, user_agent, remote_ip, session_id and the controller names are never read.

web_logs names users by their Canvas id, so the student (the SIS id) comes from a user map
(`read_user_map`): the DAP `pseudonyms` table (JSONL or CSV, the table that holds sis_user_id; Canvas
Data 2's `users` table has no SIS id), or a two-column CSV `canvas_user_id,sis_user_id`.

Decisions, in order: a deleted row (meta.action "D") -> "deleted row"; no user_id -> "no user";
real_user_id set and different -> "masquerade"; http_status 401/403/407 -> "denied", 404/410 -> "not
found", 5xx -> "server error", other 4xx -> "failed request"; a Canvas user with no SIS id in the map
-> "no user mapping"; otherwise a vle event with the row's id ("canvas-web:<id>", so a re-sent file
de-duplicates). Use either live events or web_logs for the VLE, not both: they describe the same
activity and would count it twice.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    NO_USER,
    BadRecord,
    Outcome,
    Record,
    Skip,
    decode_json,
    http_status_skip,
    make_event,
    settle,
    utc_instant,
)
from models.adapters.canvas_live_events import MASQUERADE
from models.adapters.csv_export import read_csv
from models.events import Source

NO_MAPPING = "no user mapping"
DELETED_ROW = "deleted row"
_UTC = ZoneInfo("UTC")
_PREFIXES = ("key.", "value.", "meta.")


def dap_column(name: str) -> str:
    """A DAP CSV header field without its key./value./meta. prefix."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _canvas_id(value: object, field: str) -> str | None:
    """A Canvas id (a whole number, as JSON number or text) as text; None when empty."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRecord(f"{field}: not a Canvas id")
    text = str(value).strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise BadRecord(f"{field}: not a Canvas id")
    return str(int(text))


def _status(value: object) -> int | None:
    """An HTTP status ("200", 200 or "200 OK"), None when absent."""
    if value is None or value == "":
        return None
    text = str(value).strip()[:3]
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or not 100 <= int(text) <= 599:
        raise BadRecord("http_status: not an HTTP status")
    return int(text)


def _web_log(row: Mapping[str, Any], users: Mapping[str, str] | None) -> Outcome:
    """One web_logs row (columns already without prefixes)."""
    if str(row.get("action") or "").strip().upper() == "D":
        return Skip(DELETED_ROW)
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id.strip():
        raise BadRecord("id: missing")
    occurred_at = utc_instant(row.get("timestamp"), "timestamp", _UTC)
    user = _canvas_id(row.get("user_id"), "user_id")
    real_user = _canvas_id(row.get("real_user_id"), "real_user_id")
    status = _status(row.get("http_status"))
    if user is None:
        return Skip(NO_USER)
    if real_user is not None and real_user != user:
        return Skip(MASQUERADE)
    skip = http_status_skip(status) if status is not None else None
    if skip is not None:
        return Skip(skip)
    student = users.get(user) if users is not None else None
    if student is None:
        return Skip(NO_MAPPING)
    return make_event(f"canvas-web:{row_id.strip()}", student, Source.VLE, occurred_at)


def _dap_row(item: Any) -> dict[str, Any]:
    """A DAP JSONL record flattened to its columns: key, value and meta fields in one mapping."""
    if not isinstance(item, dict):
        raise BadRecord("record is not a JSON object")
    row: dict[str, Any] = {}
    for part in ("key", "value", "meta"):
        fields = item.get(part)
        if fields is None:
            continue
        if not isinstance(fields, dict):
            raise BadRecord(f"{part}: not an object")
        for name, value in fields.items():
            row.setdefault(name, value)
    if not row:
        raise BadRecord("expected a DAP record with key, value and meta")
    return row


def _csv_web_log(row: Mapping[str, str], tz: ZoneInfo, *, users: Mapping[str, str] | None) -> Outcome:
    del tz  # DAP writes UTC
    return _web_log(row, users)


def _jsonl_web_log(text: str, users: Mapping[str, str] | None) -> Outcome:
    return _web_log(_dap_row(decode_json(text)), users)


def _read_jsonl(lines: Iterable[str], users: Mapping[str, str] | None) -> Iterator[Record]:
    for number, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        if text:
            raw = partial(str, line.rstrip("\r\n"))
            yield settle(f"line {number}", raw, partial(_jsonl_web_log, text, users))


def _peeked(lines: Iterable[str]) -> tuple[str | None, Iterator[str]]:
    """The first non-blank line (None for an empty input) and every line, that one included."""
    iterator = iter(lines)
    head: list[str] = []
    for line in iterator:
        head.append(line)
        if line.strip():
            return line.lstrip("\ufeff").strip(), itertools.chain(head, iterator)
    return None, iter(head)


def read_canvas_web_logs(
    lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE, users: Mapping[str, str] | None = None
) -> Iterator[Record]:
    """DAP web_logs as JSONL or CSV (told apart by the first line), streaming, at "line N".

    `users` maps Canvas user ids to SIS ids (`read_user_map`); without it every row with a user is
    skipped as "no user mapping". Times are UTC whatever `timezone` says (DAP writes UTC).
    """
    del timezone
    first, all_lines = _peeked(lines)
    if first is None:
        return
    if first.startswith("{"):
        yield from _read_jsonl(all_lines, users)
        return
    convert = partial(_csv_web_log, users=users)
    yield from read_csv(all_lines, ("id", "timestamp", "user_id"), convert, _UTC, column=dap_column)


# -- the user map --------------------------------------------------------------------------------------


@dataclass
class UserMap:
    """Canvas user id -> SIS id, with what could not be read (by line, never quoting a value)."""

    ids: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows: int = 0

    def add(self, row: Mapping[str, Any], where: str) -> None:
        """One pseudonym (or pair): deleted logins and logins without a SIS id are left out."""
        self.rows += 1
        if str(row.get("action") or "").strip().upper() == "D":
            return
        if str(row.get("workflow_state") or "active").strip().lower() == "deleted":
            return
        try:
            user = _canvas_id(row.get("user_id", row.get("canvas_user_id")), "user_id")
        except BadRecord as bad:
            self.problems.append(f"{where}: {bad.reason}")
            return
        sis = row.get("sis_user_id")
        if user is None:
            self.problems.append(f"{where}: user_id: missing")
            return
        if sis is None or not isinstance(sis, str) or not sis.strip():
            return  # a login without a SIS id (a staff or guest account): that user stays unmapped
        known = self.ids.setdefault(user, sis.strip())
        if known != sis.strip():
            self.problems.append(f"{where}: Canvas user has a second, different SIS id (the first is kept)")


def read_user_map(lines: Iterable[str]) -> UserMap:
    """The user map from a DAP pseudonyms export (JSONL or CSV, prefixed columns or not) or a CSV with
    the columns canvas_user_id (or user_id) and sis_user_id. Reads the whole file (one entry a user)."""
    out = UserMap()
    first, all_lines = _peeked(lines)
    if first is None:
        return out
    if first.startswith("{"):
        for number, line in enumerate(all_lines, start=1):
            if not line.strip():
                continue
            try:
                out.add(_dap_row(decode_json(line.strip().lstrip("\ufeff"))), f"line {number}")
            except BadRecord as bad:
                out.rows += 1
                out.problems.append(f"line {number}: {bad.reason}")
        return out
    reader = csv.reader(line.lstrip("\ufeff") if i == 0 else line for i, line in enumerate(all_lines))
    try:
        header = [dap_column(name.strip()) for name in next(reader)]
    except StopIteration:
        return out
    except csv.Error as error:
        out.problems.append(f"line 1: unreadable CSV: {error}")
        return out
    if "sis_user_id" not in header or not {"user_id", "canvas_user_id"} & set(header):
        out.problems.append("line 1: header lacks the columns canvas_user_id (or user_id) and sis_user_id")
        return out
    try:
        for fields in reader:
            if any(value.strip() for value in fields):
                out.add(dict(zip(header, fields, strict=False)), f"line {reader.line_num}")
    except csv.Error as error:
        out.problems.append(f"line {reader.line_num}: unreadable CSV: {error}")
    return out
