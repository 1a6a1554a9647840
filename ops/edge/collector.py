"""HTTP collector served by the running service: upstream systems POST their events straight to LDE.

`POST /v1/caliper` (a Caliper envelope), `POST /v1/xapi/statements` (one statement or an array),
`POST /v1/events` (canonical events: one object, a JSON array or JSONL) and
`POST /v1/canvas/live-events` (one Canvas live event, plain or signed: see ops.edge.canvas_signing)
read the body with the same pure
adapters as `lde ingest`, publish the valid events to the activity topic in per-partition envelopes and
answer 202 (Caliper: 200, what IMS's sensors count as success) only once Kafka has confirmed them: an
upstream system that got that answer may forget the data.
`GET /v1/openapi.json` describes all of it.

Security: each endpoint takes the bearer token of its own upstream source, and an endpoint without a
configured token refuses everyone (secure by default). Bodies are capped (413) before they are buffered.
Responses and logs carry positions and the adapters' fixed reasons, never input values: a title or URL
must not leave the edge, and invalid records reach the dead-letter topic only as a digest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from models.adapters import ADAPTERS, Invalid, Parsed, Record, Skipped, read_lde_jsonl
from models.clock import Clock, WallClock
from models.dead_letters import dead_letter_headers
from models.envelopes import Message, envelopes
from models.event_time import TimeWindow, accepting
from models.events import ActivityEvent
from models.partitioning import partition_for
from models.timebuckets import local_day, zone
from ops.edge.caliper_people import person_map
from ops.edge.canvas_signing import REALM as SIGNATURE_REALM
from ops.edge.canvas_signing import Opened, Refused, key_source, open_live_event
from ops.edge.endpoints import ENDPOINTS, Endpoint
from ops.edge.ingest import redacted_record
from ops.edge.openapi import OPENAPI_PATH, openapi_document
from ops.edge.shared import THREAD_THRESHOLD_BYTES, check_bearer, read_limited
from ops.edge.xapi_resource import ABOUT_PATH as XAPI_ABOUT_PATH
from ops.edge.xapi_resource import STATEMENTS_PATH as XAPI_STATEMENTS_PATH
from ops.edge.xapi_resource import XapiResource
from ops.http.surface import as_bytes, as_json
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.kafka import EnvelopeSender
from sinks.statement_ledger import AsyncStatementLedger, async_client
from streams.batch import TOO_LATE

log = logging.getLogger("lde.collector")

REALM = 'Bearer realm="lde-collector"'


# -- configuration -------------------------------------------------------------------------------------


def collector_tokens(settings: Settings) -> dict[str, str]:
    """The bearer token of each upstream source (LDE_COLLECTOR_TOKENS, a JSON object, e.g.
    {"caliper": "...", "xapi": "...", "events": "..."}).

    Blank tokens are dropped (with a warning): an empty token must never match an empty or missing
    Authorization header.
    """
    tokens: dict[str, str] = {}
    for source, token in settings.collector_tokens.items():
        value = token.get_secret_value()
        if value.strip():
            tokens[str(source)] = value
        else:
            log.warning("collector_token_ignored source=%s: empty", source)
    return tokens


# -- the pure core: authorisation, parsing, what to publish -------------------------------------------


def query_bearer(endpoint: Endpoint, header: str | None, query: Any) -> str | None:
    """The Authorization header, or for an endpoint that takes it, the RFC 6750 `access_token` query
    parameter as a bearer header (the header wins when both are sent)."""
    if header or not endpoint.query_token:
        return header
    token = query.get("access_token") if query is not None else None
    return f"Bearer {token}" if token else header


def _renamed(records: Iterable[Record], position: Any) -> Iterator[Record]:
    """Records with positions that name what the client sent (an array item, not a re-serialised line)."""
    for number, record in enumerate(records, start=1):
        yield dataclasses.replace(record, position=position(number))


def _json_error(error: ValueError | RecursionError) -> str:
    """A JSON syntax error as the adapters word it: where, never what (the text may hold a title)."""
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return "not JSON: too deeply nested or a number too long"


def read_canonical(text: str, *, timezone: str) -> Iterator[Record]:
    """Canonical events as one JSON object, a JSON array of objects, or JSONL (one object a line).

    Every event goes through the lde-jsonl adapter, so the HTTP path validates exactly like the CLI.
    Positions: "item N" in an array, "document" for one multi-line object, else "line N".
    """
    body = text.strip()
    if body.startswith("["):
        try:
            items = json.loads(body)
        except (ValueError, RecursionError) as error:
            yield Invalid("document", _json_error(error), text)
            return
        lines = (json.dumps(item) for item in items)  # one item a line: the adapter's "line N" is item N
        yield from _renamed(read_lde_jsonl(lines, timezone=timezone), lambda n: f"item {n}")
        return
    if body.startswith("{") and "\n" in body:
        try:
            single = json.loads(body)
        except (ValueError, RecursionError):
            single = None  # JSONL, or a broken object: read line by line
        if isinstance(single, dict):
            yield from _renamed(read_lde_jsonl([json.dumps(single)], timezone=timezone), lambda n: "document")
            return
    yield from read_lde_jsonl(text.split("\n"), timezone=timezone)


def parse_body(
    endpoint: Endpoint, text: str, timezone: str, options: Mapping[str, Any] | None = None
) -> Iterator[Record]:
    """The records of a request body, read by the endpoint's adapter (with its own keywords, if any)."""
    if endpoint.adapter == "lde-jsonl":
        return read_canonical(text, timezone=timezone)
    return ADAPTERS[endpoint.adapter]([text], timezone=timezone, **(options or {}))


def _note(record: Skipped | Invalid) -> dict[str, str]:
    return {"position": record.position, "reason": record.reason}


@dataclass
class Assessment:
    """What a request body holds and what to publish for it (pure, so a large body is built off the loop)."""

    accepted: int = 0
    duplicates: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)  # refused: validation or time window
    late: list[dict[str, str]] = field(default_factory=list)  # older than the stream's lateness limit
    messages: list[Message] = field(default_factory=list)
    dead_letters: list[tuple[bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        """Nothing in the body could be read: the client must fix it, so answer 400 and publish nothing."""
        return bool(self.invalid) and not (self.accepted or self.duplicates or self.skipped or self.late)

    def summary(self, request_id: str) -> dict[str, Any]:
        """The answer's body: a count per outcome (accepted, duplicates, too_late, refused; issues 23
        and 25), then each record not accepted with its position and reason."""
        return {
            "request_id": request_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "too_late": len(self.late),
            "refused": len(self.invalid),
            "skipped": self.skipped,
            "invalid": self.invalid,
            "late": self.late,
        }


def assess(
    endpoint: Endpoint,
    body: bytes,
    *,
    timezone: str,
    partitions: int,
    envelope_max_events: int,
    request_id: str,
    options: Mapping[str, Any] | None = None,
    window: TimeWindow | None = None,
    oldest_accepted_day: Mapping[int, int] | None = None,
) -> Assessment:
    """Read a body and prepare its messages: envelopes of the valid events (an event id repeated within
    the body is sent once, as `lde ingest` does) and, unless the body is rejected, a dead letter (digest,
    never the text) per invalid record with headers error, source and position.

    An event outside `window` (models.event_time) is refused like any invalid record. An event older
    than its partition's `oldest_accepted_day` (the stream's lateness limit, streams.batch) is too late:
    counted apart, dead-lettered here with the stream's reason, and not published."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Assessment(invalid=[{"position": "document", "reason": "not UTF-8 text"}])
    if not text.strip():
        return Assessment(invalid=[{"position": "document", "reason": "empty body"}])
    out = Assessment()
    seen: set[str] = set()
    events: list[ActivityEvent] = []
    bad: list[Invalid] = []
    late: list[ActivityEvent] = []
    with accepting(window):
        records = list(parse_body(endpoint, text, timezone, options))
    for record in records:
        if isinstance(record, Parsed):
            if record.event.event_id in seen:
                out.duplicates += 1
                continue
            seen.add(record.event.event_id)
            reason = _too_late(record.event, partitions, oldest_accepted_day, timezone)
            if reason is not None:
                late.append(record.event)
                out.late.append({"position": record.position, "reason": reason})
                continue
            events.append(record.event)
        elif isinstance(record, Skipped):
            out.skipped.append(_note(record))
        else:
            bad.append(record)
            out.invalid.append(_note(record))
    out.accepted = len(events)
    if not out.rejected:
        out.messages = envelopes(events, partitions=partitions, max_events=envelope_max_events)
        out.dead_letters = [
            (
                redacted_record(record.raw),
                dead_letter_headers(
                    record.reason, endpoint.dead_letter_source, record.position, request_id=request_id
                ),
            )
            for record in bad
        ]
        # A too-late event is a canonical event (nothing private): kept whole, as the stream keeps it.
        out.dead_letters += [
            (
                event.model_dump_json().encode(),
                dead_letter_headers(
                    note["reason"], endpoint.dead_letter_source, note["position"], request_id=request_id
                ),
            )
            for event, note in zip(late, out.late, strict=True)
        ]
    return out


def _too_late(
    event: ActivityEvent, partitions: int, oldest: Mapping[int, int] | None, timezone: str
) -> str | None:
    """The stream's too-late reason for an event older than its partition's oldest accepted day."""
    limit = (oldest or {}).get(partition_for(event.student_id, partitions))
    if limit is None or local_day(event.occurred_at, zone(timezone)).toordinal() >= limit:
        return None
    return f"{TOO_LATE}: {event.occurred_at.isoformat()} is beyond the lateness limit"


# -- the service side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A response before Faust renders it, so the handling stays testable without a web server."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


#: Each partition's oldest accepted local day (ordinal), asked for the partitions given.
OldestAccepted = Callable[[Iterable[int]], Mapping[int, int]]


class Collector:
    """The endpoints' shared state: settings, metrics, the publisher, the tokens, the cap and the keys."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        publisher: EnvelopeSender,
        clock: Clock,
        oldest_accepted: OldestAccepted,
    ) -> None:
        """`clock`: the stream's (the time window is read against it); `oldest_accepted`: each
        partition's oldest local day the stream still accepts (older is too late: answered apart)."""
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.clock = clock
        self.oldest_accepted = oldest_accepted
        self.tokens = collector_tokens(settings)
        self.max_bytes = settings.collector_max_bytes
        self.canvas_keys = key_source(settings)  # inline keys are read here: a bad one stops start-up
        self.adapter_options = {"caliper": {"people": person_map(settings)}}  # a bad map stops it too
        closed = [e.path for e in ENDPOINTS if e.source not in self.tokens]
        if closed:
            log.warning(
                "collector_closed endpoints=%s: no token configured, they answer 401", ",".join(closed)
            )

    async def handle(self, endpoint: Endpoint, request: Any) -> Reply:
        """Answer one request, timing and counting it whatever the outcome."""
        started = time.perf_counter()
        reply = await self._handle(endpoint, request)
        self.metrics.collector_requests.labels(endpoint=endpoint.source, status=str(reply.status)).inc()
        self.metrics.collector_seconds.labels(endpoint=endpoint.source).observe(time.perf_counter() - started)
        return reply

    async def _handle(self, endpoint: Endpoint, request: Any) -> Reply:
        # Authorise before reading: an unauthorised client cannot make the service buffer anything.
        header = query_bearer(endpoint, request.headers.get("Authorization"), getattr(request, "query", None))
        refusal = check_bearer(header, self.tokens.get(endpoint.source))
        if refusal is not None:
            return Reply(401, {"error": refusal}, {"WWW-Authenticate": REALM})
        body = await read_limited(request, self.max_bytes)
        if body is None:
            error = (
                f"request body larger than {self.max_bytes} bytes: nothing was published; send it in parts"
            )
            return Reply(413, {"error": error, "max_bytes": self.max_bytes})
        if endpoint.signed:
            opened = await self._open_signed(body)  # a URL key source may fetch
            self.metrics.collector_signatures.labels(endpoint=endpoint.source, outcome=opened.outcome).inc()
            if isinstance(opened, Refused):
                headers = {"WWW-Authenticate": SIGNATURE_REALM} if opened.status == 401 else {}
                if opened.status == 503:
                    headers["Retry-After"] = "60"
                return Reply(opened.status, {"error": opened.error}, headers)
            body = opened.body
        request_id = uuid.uuid4().hex
        s = self.settings
        work = functools.partial(
            assess,
            endpoint,
            body,
            timezone=s.timezone,
            partitions=s.partitions,
            envelope_max_events=s.envelope_max_events,
            request_id=request_id,
            options=self.adapter_options.get(endpoint.adapter),
            window=s.event_time_window(self.clock.now()),
            oldest_accepted_day=self.oldest_accepted(range(s.partitions)),
        )
        result = await asyncio.to_thread(work) if len(body) > THREAD_THRESHOLD_BYTES else work()
        log.info(
            "collector source=%s request_id=%s bytes=%d accepted=%d duplicates=%d too_late=%d refused=%d "
            "skipped=%d",
            endpoint.source,
            request_id,
            len(body),
            result.accepted,
            result.duplicates,
            len(result.late),
            len(result.invalid),
            len(result.skipped),
        )
        if result.rejected:
            self._count(endpoint, result)
            return Reply(
                400, {"error": "no record could be read: nothing was published", **result.summary(request_id)}
            )
        try:
            await self.publisher.publish(result.messages, result.dead_letters)
        except Exception as error:  # timeout or broker error: the client must retry, never assume delivery
            log.error(
                "collector_publish_failed source=%s request_id=%s error=%r",
                endpoint.source,
                request_id,
                error,
            )
            retry = (
                "Kafka did not confirm the events: send the same body again (events are de-duplicated by id)"
            )
            return Reply(503, {"error": retry, "request_id": request_id}, {"Retry-After": "5"})
        self._count(endpoint, result)  # only once published: a 503 is retried and would count twice
        if result.dead_letters:
            self.metrics.dead_letters.labels(topic=endpoint.dead_letter_source).inc(len(result.dead_letters))
        return Reply(endpoint.success_status, result.summary(request_id))

    async def _open_signed(self, body: bytes) -> Opened | Refused:
        """The signature decision for a signed endpoint's body, on the wall clock (JWT times are real)."""
        s = self.settings
        return await open_live_event(
            body,
            self.canvas_keys,
            algorithms=s.canvas_jwt_algorithms,
            accept_unsigned=s.canvas_accept_unsigned,
            now=WallClock().now(),
            leeway=s.canvas_jwt_leeway_seconds,
        )

    def _count(self, endpoint: Endpoint, result: Assessment) -> None:
        for outcome, count in (
            ("accepted", result.accepted),
            ("duplicate", result.duplicates),
            ("skipped", len(result.skipped)),
            ("invalid", len(result.invalid)),
            ("too_late", len(result.late)),
        ):
            if count:
                self.metrics.collector_records.labels(endpoint=endpoint.source, outcome=outcome).inc(count)


def statement_ledger(lde: Any) -> AsyncStatementLedger | None:
    """The xAPI statement ledger on the service's Redis (None without one: the resource answers 503)."""
    alerts = getattr(lde, "ledger", None)
    client = getattr(alerts, "client", None)
    if client is None:
        return None
    url = lde.settings.redis_url.get_secret_value()
    return AsyncStatementLedger(async_client(client, url), lde.settings.xapi_ledger_days)


def register_collector_routes(
    app: web.Application, collector: Collector, ledger: AsyncStatementLedger | None
) -> None:
    """The collector's endpoints, the xAPI resource and the OpenAPI document on an aiohttp application:
    the worker's web server (ops.runtime.wiring, publishing through the stream's producer) and `lde
    edge`, a process of the edge's own (ops.runtime.standalone, issue 26)."""

    def post_to(endpoint: Endpoint) -> Any:
        async def post(request: web.Request) -> web.Response:
            reply = await collector.handle(endpoint, request)
            return as_json(reply.body, status=reply.status, headers=reply.headers or None)

        return post

    for endpoint in ENDPOINTS:
        app.router.add_post(endpoint.path, post_to(endpoint))
    xapi = XapiResource(
        collector.settings,
        collector.metrics,
        collector.tokens,
        collector.publisher,
        ledger,
        clock=collector.clock,
    )

    def rendered(answer: Any) -> web.Response:
        if answer.body is None:
            return as_bytes(b"", status=answer.status, headers=answer.headers)
        return as_json(answer.body, status=answer.status, headers=answer.headers)

    async def statements(request: web.Request) -> web.Response:
        return rendered(await xapi.statements(request, request.method))

    async def about(request: web.Request) -> web.Response:
        return rendered(await xapi.about(request))

    app.router.add_route("POST", XAPI_STATEMENTS_PATH, statements)
    app.router.add_route("PUT", XAPI_STATEMENTS_PATH, statements)
    app.router.add_get(XAPI_ABOUT_PATH, about)
    document = openapi_document(collector.max_bytes)

    async def openapi(request: web.Request) -> web.Response:
        return as_json(document)

    app.router.add_get(OPENAPI_PATH, openapi)
