"""Adapters: upstream formats -> canonical ActivityEvents, one result per record, never an exception.

Pure: an adapter consumes an iterable of text lines (a file opened in text mode, stdin, a list) and
yields one `Parsed`, `Skipped` or `Invalid` per record, with the record's position, so the caller
(ingest, an HTTP collector, a test) decides what to publish, count and dead-letter. Line formats
stream: a file larger than memory works. The JSON formats (caliper, xapi) are single documents and
are read whole. canvas-web-logs also takes `users` (Canvas user id -> SIS id, from
`canvas_data.read_user_map`), which `lde ingest --user-map` passes.

Privacy at the edge: titles, document names, item and page names and URLs are read only where a
decision needs them (an asset check, a hash) and never reach an event or a reason. Reasons are fixed
phrases or field names, never input values; only `Invalid.raw` holds the record as it came, for the
dead-letter topic.

Times: see `models.adapters.base` (an offset is taken as it is; a CSV time without one is local time
in the institution's zone, fold=0 at the clock changes).

Event ids: the upstream id where there is one (Caliper and xAPI ids, library loan ids; attendance is
student + session). Otherwise a deterministic hash of the fields that identify the record, so a
re-sent file produces the same ids and the stream de-duplicates it. Duplicate deliveries are
passed through: de-duplication is the stream's job.

One module per upstream format (or family of exports from one system); `base` holds the results and
the field helpers, `csv_export` the CSV reading every CSV format shares. To add a format: write its
module with a `read_<format>(lines, *, timezone=DEFAULT_TIMEZONE)` function that builds events with
the helpers in `base` (and `csv_export.read_csv` for a CSV), then add one line to `ADAPTERS`.
"""

from __future__ import annotations

from models.adapters.attendance import read_attendance
from models.adapters.base import DEFAULT_TIMEZONE, Adapter, Invalid, Parsed, Record, Skipped
from models.adapters.caliper import read_caliper
from models.adapters.canvas_data import read_canvas_web_logs
from models.adapters.canvas_live_events import read_canvas_live_events
from models.adapters.ezproxy import read_ezproxy
from models.adapters.lde_jsonl import read_lde_jsonl
from models.adapters.library import read_library_loans
from models.adapters.logons import read_pc_logons, read_remote_sessions
from models.adapters.papercut import read_papercut
from models.adapters.xapi import read_xapi

#: Format name (as `lde ingest --format` spells it) -> adapter.
ADAPTERS: dict[str, Adapter] = {
    "lde-jsonl": read_lde_jsonl,
    "caliper": read_caliper,
    "xapi": read_xapi,
    "ezproxy": read_ezproxy,
    "papercut": read_papercut,
    "pc-logons": read_pc_logons,
    "remote-sessions": read_remote_sessions,
    "library-loans": read_library_loans,
    "attendance": read_attendance,
    "canvas-live-events": read_canvas_live_events,
    "canvas-web-logs": read_canvas_web_logs,
}

__all__ = [
    "ADAPTERS",
    "DEFAULT_TIMEZONE",
    "Adapter",
    "Invalid",
    "Parsed",
    "Record",
    "Skipped",
    "read_attendance",
    "read_caliper",
    "read_canvas_live_events",
    "read_canvas_web_logs",
    "read_ezproxy",
    "read_lde_jsonl",
    "read_library_loans",
    "read_papercut",
    "read_pc_logons",
    "read_remote_sessions",
    "read_xapi",
]
