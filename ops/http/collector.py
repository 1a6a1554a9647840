"""HTTP collector served by the running service: upstream systems POST their events straight to LDE.

`POST /v1/caliper` (a Caliper envelope), `POST /v1/xapi/statements` (one statement or an array) and
`POST /v1/events` (canonical events: one object, a JSON array or JSONL) read the body with the same pure
adapters as `lde ingest`, publish the valid events to the activity topic in per-partition envelopes and
answer 202 only once Kafka has confirmed them: an upstream system that got a 202 may forget the data.
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
import hmac
import json
import logging
import os
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import SecretStr

from models.adapters import ADAPTERS, Invalid, Parsed, Record, Skipped, read_lde_jsonl
from models.events import ActivityEvent, encode_envelope
from models.partitioning import partition_for
from ops.ingest import redacted_record
from sinks.kafka import dead_letter_headers

log = logging.getLogger("lde.collector")

TOKENS_ENV = "LDE_COLLECTOR_TOKENS"
MAX_BYTES_ENV = "LDE_COLLECTOR_MAX_BYTES"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: Larger bodies are parsed in a worker thread, so the agents and the evaluator on the loop keep running.
THREAD_THRESHOLD_BYTES = 256 * 1024
#: How long Kafka may take to confirm a request's messages before the client is told to retry (503).
PUBLISH_TIMEOUT_SECONDS = 30.0
REALM = 'Bearer realm="lde-collector"'


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One collector endpoint: its path, the upstream source whose token it takes, and its adapter."""

    path: str
    source: str
    adapter: str
    summary: str

    @property
    def dead_letter_source(self) -> str:
        """The `source` header of this endpoint's dead letters (the CLI puts the format name there)."""
        return f"http:{self.source}"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/v1/caliper", "caliper", "caliper", "Canvas live events: one IMS Caliper 1.1 envelope"),
    Endpoint(
        "/v1/xapi/statements",
        "xapi",
        "xapi",
        "xAPI statements: one statement, an array of statements or a StatementResult",
    ),
    Endpoint("/v1/events", "events", "lde-jsonl", "Canonical events: one JSON object, a JSON array or JSONL"),
)


# -- configuration -------------------------------------------------------------------------------------


def _tokens_from_env(raw: str) -> dict[str, Any]:
    """LDE_COLLECTOR_TOKENS as a JSON object; unreadable means no tokens (every endpoint refuses)."""
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        # Never log the value: it holds secrets.
        log.error(
            "collector_tokens_unreadable env=%s: not a JSON object; every endpoint answers 401", TOKENS_ENV
        )
        return {}
    return decoded


def collector_tokens(settings: Any) -> dict[str, str]:
    """The bearer token of each upstream source: `settings.collector_tokens` when set, else the JSON
    object in LDE_COLLECTOR_TOKENS, e.g. {"caliper": "...", "xapi": "...", "events": "..."}.

    Blank or non-string tokens are dropped (with a warning): an empty token must never match an empty
    or missing Authorization header.
    """
    configured: Mapping[str, Any] | None = getattr(settings, "collector_tokens", None)
    if not configured:
        configured = _tokens_from_env(os.environ.get(TOKENS_ENV, ""))
    tokens: dict[str, str] = {}
    for source, token in configured.items():
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        if isinstance(value, str) and value.strip():
            tokens[str(source)] = value
        else:
            log.warning("collector_token_ignored source=%s: empty or not a string", source)
    return tokens


def collector_max_bytes(settings: Any) -> int:
    """The request body cap: `settings.collector_max_bytes` when set, else LDE_COLLECTOR_MAX_BYTES, else
    5 MiB (a cap keeps one client from filling the service's memory)."""
    configured = getattr(settings, "collector_max_bytes", None)
    if configured is None:
        configured = os.environ.get(MAX_BYTES_ENV, "").strip() or DEFAULT_MAX_BYTES
    try:
        limit = int(configured)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1:
        log.warning("collector_max_bytes_ignored value=%r: not a positive integer", configured)
        return DEFAULT_MAX_BYTES
    return limit


# -- the pure core: authorisation, parsing, what to publish -------------------------------------------


def check_bearer(header: str | None, expected: str | None) -> str | None:
    """Why a request is refused, or None when its bearer token is this endpoint's (constant time)."""
    if not expected:
        return (
            "no token is configured for this endpoint, so it accepts no request "
            f"(secure by default: the operator sets {TOKENS_ENV})"
        )
    scheme, _, given = (header or "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return "missing bearer token: send 'Authorization: Bearer <token>'"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "invalid bearer token for this endpoint"
    return None


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


def parse_body(endpoint: Endpoint, text: str, timezone: str) -> Iterator[Record]:
    """The records of a request body, read by the endpoint's adapter."""
    if endpoint.adapter == "lde-jsonl":
        return read_canonical(text, timezone=timezone)
    return ADAPTERS[endpoint.adapter]([text], timezone=timezone)


def envelopes(events: Sequence[ActivityEvent], partitions: int, max_events: int) -> list[tuple[int, bytes]]:
    """Activity-topic messages: each holds students of one partition only (state lives per partition),
    at most `max_events` of them, in the order they came (as sinks.kafka.Publisher.send_events)."""
    by_partition: dict[int, list[ActivityEvent]] = defaultdict(list)
    for event in events:
        by_partition[partition_for(event.student_id, partitions)].append(event)
    return [
        (partition, encode_envelope(group[start : start + max_events]))
        for partition, group in sorted(by_partition.items())
        for start in range(0, len(group), max_events)
    ]


def _note(record: Skipped | Invalid) -> dict[str, str]:
    return {"position": record.position, "reason": record.reason}


@dataclass
class Assessment:
    """What a request body holds and what to publish for it (pure, so a large body is built off the loop)."""

    accepted: int = 0
    duplicates: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        """Nothing in the body could be read: the client must fix it, so answer 400 and publish nothing."""
        return bool(self.invalid) and not (self.accepted or self.duplicates or self.skipped)

    def summary(self, request_id: str) -> dict[str, Any]:
        return {
            "request_id": request_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "invalid": self.invalid,
        }


def assess(
    endpoint: Endpoint,
    body: bytes,
    *,
    timezone: str,
    partitions: int,
    envelope_max_events: int,
    request_id: str,
) -> Assessment:
    """Read a body and prepare its messages: envelopes of the valid events (an event id repeated within
    the body is sent once, as `lde ingest` does) and, unless the body is rejected, a dead letter (digest,
    never the text) per invalid record with headers error, source and position."""
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
    for record in parse_body(endpoint, text, timezone):
        if isinstance(record, Parsed):
            if record.event.event_id in seen:
                out.duplicates += 1
                continue
            seen.add(record.event.event_id)
            events.append(record.event)
        elif isinstance(record, Skipped):
            out.skipped.append(_note(record))
        else:
            bad.append(record)
            out.invalid.append(_note(record))
    out.accepted = len(events)
    if not out.rejected:
        out.messages = envelopes(events, partitions, envelope_max_events)
        out.dead_letters = [
            (
                redacted_record(record.raw),
                [
                    *dead_letter_headers(record.reason, endpoint.dead_letter_source, record.position),
                    ("request_id", request_id.encode()),
                ],
            )
            for record in bad
        ]
    return out


# -- metrics -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectorMetrics:
    """The collector's metrics: ops.metrics.Metrics' own when it declares them, else registered here on
    its registry (once per registry), so /metrics shows them either way."""

    requests: Counter
    records: Counter
    seconds: Histogram

    @classmethod
    def on(cls, metrics: Any) -> CollectorMetrics:
        registry: CollectorRegistry = metrics.registry
        cached = _METRICS.get(registry)
        if cached is not None:
            return cached

        def declared_or(name: str, make: Callable[[], Any]) -> Any:
            existing = getattr(metrics, name, None)
            return existing if existing is not None else make()

        cached = cls(
            declared_or(
                "collector_requests",
                lambda: Counter(
                    "lde_collector_requests_total",
                    "HTTP collector requests by endpoint and response status",
                    ["endpoint", "status"],
                    registry=registry,
                ),
            ),
            declared_or(
                "collector_records",
                lambda: Counter(
                    "lde_collector_records_total",
                    "HTTP collector records by outcome: accepted, duplicate, skipped, invalid",
                    ["endpoint", "outcome"],
                    registry=registry,
                ),
            ),
            declared_or(
                "collector_seconds",
                lambda: Histogram(
                    "lde_collector_request_seconds",
                    "Time to answer one collector request, Kafka confirmation included",
                    ["endpoint"],
                    registry=registry,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                ),
            ),
        )
        _METRICS[registry] = cached
        return cached


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, CollectorMetrics] = weakref.WeakKeyDictionary()


# -- the service side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A response before Faust renders it, so the handling stays testable without a web server."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


async def read_limited(request: Any, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit`, declared or actually sent.

    Streams from the connection instead of request.read(): aiohttp's own 1 MiB cap would answer first,
    and a body is never buffered past the limit (a chunked body declares no length).
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Collector:
    """The endpoints' shared state: the LdeApp's topics, settings and metrics, the tokens and the cap."""

    def __init__(self, lde: Any) -> None:
        self.lde = lde
        self.settings = lde.settings
        self.tokens = collector_tokens(lde.settings)
        self.max_bytes = collector_max_bytes(lde.settings)
        self.metrics = CollectorMetrics.on(lde.metrics)
        closed = [e.path for e in ENDPOINTS if e.source not in self.tokens]
        if closed:
            log.warning(
                "collector_closed endpoints=%s: no token configured, they answer 401", ",".join(closed)
            )

    async def handle(self, endpoint: Endpoint, request: Any) -> Reply:
        """Answer one request, timing and counting it whatever the outcome."""
        started = time.perf_counter()
        reply = await self._handle(endpoint, request)
        self.metrics.requests.labels(endpoint=endpoint.source, status=str(reply.status)).inc()
        self.metrics.seconds.labels(endpoint=endpoint.source).observe(time.perf_counter() - started)
        return reply

    async def _handle(self, endpoint: Endpoint, request: Any) -> Reply:
        # Authorise before reading: an unauthorised client cannot make the service buffer anything.
        refusal = check_bearer(request.headers.get("Authorization"), self.tokens.get(endpoint.source))
        if refusal is not None:
            return Reply(401, {"error": refusal}, {"WWW-Authenticate": REALM})
        body = await read_limited(request, self.max_bytes)
        if body is None:
            error = (
                f"request body larger than {self.max_bytes} bytes: nothing was published; send it in parts"
            )
            return Reply(413, {"error": error, "max_bytes": self.max_bytes})
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
        )
        result = await asyncio.to_thread(work) if len(body) > THREAD_THRESHOLD_BYTES else work()
        log.info(
            "collector source=%s request_id=%s bytes=%d accepted=%d duplicates=%d skipped=%d invalid=%d",
            endpoint.source,
            request_id,
            len(body),
            result.accepted,
            result.duplicates,
            len(result.skipped),
            len(result.invalid),
        )
        if result.rejected:
            self._count(endpoint, result)
            return Reply(
                400, {"error": "no record could be read: nothing was published", **result.summary(request_id)}
            )
        try:
            await asyncio.wait_for(self._publish(result), PUBLISH_TIMEOUT_SECONDS)
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
            self.lde.metrics.dead_letters.labels(topic=endpoint.dead_letter_source).inc(
                len(result.dead_letters)
            )
        return Reply(202, result.summary(request_id))

    async def _publish(self, result: Assessment) -> None:
        """Send every message, then wait until Kafka has confirmed all of them (force: never attach them
        to a stream event, which would delay them until that event is acknowledged)."""
        pending = [
            await self.lde.activity_topic.send(value=value, partition=partition, force=True)
            for partition, value in result.messages
        ]
        pending += [
            await self.lde.dead_letter_topic.send(value=value, headers=headers, force=True)
            for value, headers in result.dead_letters
        ]
        await asyncio.gather(*pending)

    def _count(self, endpoint: Endpoint, result: Assessment) -> None:
        for outcome, count in (
            ("accepted", result.accepted),
            ("duplicate", result.duplicates),
            ("skipped", len(result.skipped)),
            ("invalid", len(result.invalid)),
        ):
            if count:
                self.metrics.records.labels(endpoint=endpoint.source, outcome=outcome).inc(count)


def _view(collector: Collector, endpoint: Endpoint) -> type[faust.web.View]:
    """A Faust view answering POST on one endpoint (GET and others: 405, from Faust)."""

    class CollectorView(faust.web.View):
        async def post(self, request: Any) -> Any:
            reply = await collector.handle(endpoint, request)
            return self.json(reply.body, status=reply.status, headers=reply.headers or None)

    CollectorView.__name__ = CollectorView.__qualname__ = f"collector_{endpoint.source}"
    CollectorView.__doc__ = endpoint.summary
    return CollectorView


def register_collector(app: Any, lde: Any) -> None:
    """Add the collector's endpoints to the Faust web app (called by streams.app.LdeApp)."""
    collector = Collector(lde)
    for endpoint in ENDPOINTS:
        app.page(endpoint.path, name=f"collector_{endpoint.source}")(_view(collector, endpoint))
    document = openapi_document(collector.max_bytes)

    @app.page("/v1/openapi.json", name="collector_openapi")
    async def openapi(self: Any, request: Any) -> Any:
        return self.json(document)


# -- OpenAPI -------------------------------------------------------------------------------------------


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_CANONICAL_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "The canonical activity event; any other field (a title, a URL) is dropped at the edge.",
    "required": ["event_id", "student_id", "source", "occurred_at"],
    "properties": {
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "unique at the source",
        },
        "student_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "source": {
            "type": "string",
            "enum": ["vle", "library", "eresource", "print", "pc_logon", "remote", "attendance"],
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with a UTC offset (a time without one is invalid)",
        },
        "attributes": {
            "type": ["object", "null"],
            "properties": {
                "status": {"type": "string", "enum": ["present", "late", "absent", "authorised_absence"]},
                "pages": {"type": "integer", "minimum": 0, "maximum": 100000},
            },
        },
    },
    "examples": [
        {
            "event_id": "urn:uuid:6f1c2a0e-3b7d-4a8e-9d51-0c2f4b7e9a11",
            "student_id": "900412771",
            "source": "vle",
            "occurred_at": "2026-10-24T23:30:41Z",
        }
    ],
}

_CALIPER_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": (
        "An IMS Caliper 1.1 envelope as Canvas live events send it. Each event's student is "
        "actor.extensions['com.instructure.canvas'].user_sis_id; events without one (staff, integrations) "
        "are skipped as 'no user', and LoggedOut / TimedOut as 'logoff'. Positions are data[i]."
    ),
    "required": ["data"],
    "properties": {
        "sensor": {"type": "string"},
        "sendTime": {"type": "string", "format": "date-time"},
        "dataVersion": {"type": "string"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "actor", "eventTime"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "action": {"type": "string"},
                    "eventTime": {"type": "string", "format": "date-time"},
                    "actor": {
                        "type": "object",
                        "properties": {
                            "extensions": {
                                "type": "object",
                                "properties": {
                                    "com.instructure.canvas": {
                                        "type": "object",
                                        "properties": {"user_sis_id": {"type": "string"}},
                                    }
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}

_XAPI_STATEMENT: dict[str, Any] = {
    "type": "object",
    "description": (
        "An xAPI statement. The student is actor.account.name; mapped by the verb's last path segment: "
        "attended -> attendance, borrowed -> library, viewed -> vle or eresource, logged in -> vle, "
        "pc_logon or remote; other verbs are skipped ('unmapped verb'). Positions are 'statement N'."
    ),
    "required": ["id", "actor", "verb"],
    "properties": {
        "id": {"type": "string"},
        "actor": {
            "type": "object",
            "properties": {"account": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        "verb": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "object": {"type": "object"},
        "result": {"type": "object"},
        "context": {"type": "object"},
        "timestamp": {"type": "string", "format": "date-time"},
        "stored": {"type": "string", "format": "date-time"},
    },
}


def openapi_document(max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """The collector's OpenAPI 3.1 description (served at GET /v1/openapi.json)."""
    note = {
        "type": "object",
        "required": ["position", "reason"],
        "properties": {
            "position": {
                "type": "string",
                "examples": ["data[3]", "statement 6", "line 2", "item 1", "document"],
            },
            "reason": {"type": "string", "description": "a fixed phrase or field name, never an input value"},
        },
    }
    summary = {
        "type": "object",
        "required": ["request_id", "accepted", "duplicates", "skipped", "invalid"],
        "properties": {
            "request_id": {"type": "string", "description": "also the request_id header of its dead letters"},
            "accepted": {"type": "integer", "description": "events published to the activity topic"},
            "duplicates": {"type": "integer", "description": "events whose id appeared earlier in the body"},
            "skipped": {
                "type": "array",
                "items": _ref("RecordNote"),
                "description": "well-formed, not engagement",
            },
            "invalid": {"type": "array", "items": _ref("RecordNote")},
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "max_bytes": {"type": "integer"},
            "request_id": {"type": "string"},
        },
    }
    bodies = {
        "caliper": _json_body(_ref("CaliperEnvelope")),
        "xapi": _json_body(
            {
                "oneOf": [
                    _ref("XapiStatement"),
                    {"type": "array", "items": _ref("XapiStatement")},
                    {
                        "type": "object",
                        "required": ["statements"],
                        "properties": {"statements": {"type": "array", "items": _ref("XapiStatement")}},
                    },
                ]
            }
        ),
        "events": {
            **_json_body(
                {"oneOf": [_ref("CanonicalEvent"), {"type": "array", "items": _ref("CanonicalEvent")}]}
            ),
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "JSONL: one CanonicalEvent object a line"}
            },
        },
    }
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths[endpoint.path] = {
            "post": {
                "operationId": f"collect_{endpoint.source}",
                "summary": endpoint.summary,
                "description": (
                    f"Uses the bearer token of the '{endpoint.source}' source. The response is sent once "
                    "Kafka has confirmed every accepted event; invalid records of a partly valid body go to "
                    f"the dead-letter topic (source 'http:{endpoint.source}') as a digest. Content-Type is "
                    "not checked; the body must be UTF-8."
                ),
                "security": [{f"{endpoint.source}Token": []}],
                "requestBody": {"required": True, "content": bodies[endpoint.source]},
                "responses": {
                    "202": _ref("Accepted", "responses"),
                    "400": _ref("Rejected", "responses"),
                    "401": _ref("Unauthorized", "responses"),
                    "413": _ref("TooLarge", "responses"),
                    "503": _ref("Unavailable", "responses"),
                },
            }
        }
    paths["/v1/openapi.json"] = {
        "get": {
            "operationId": "collector_openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1 document", "content": _json_body({"type": "object"})}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LDE HTTP collector",
            "version": "1",
            "description": (
                "Upstream systems send activity straight to LDE. Titles, URLs and document names are dropped "
                "at the edge; responses name records by position only."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                f"{e.source}Token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        f"The '{e.source}' token from {TOKENS_ENV}; with none configured the endpoint "
                        "answers 401 to everyone."
                    ),
                }
                for e in ENDPOINTS
            },
            "schemas": {
                "RecordNote": note,
                "Summary": summary,
                "Rejected": {"allOf": [summary, error]},
                "Error": error,
                "CanonicalEvent": _CANONICAL_EVENT,
                "CaliperEnvelope": _CALIPER_ENVELOPE,
                "XapiStatement": _XAPI_STATEMENT,
            },
            "responses": {
                "Accepted": {
                    "description": "In Kafka: valid events published; skipped and invalid records listed",
                    "content": _json_body(_ref("Summary")),
                },
                "Rejected": {
                    "description": "No record could be read (not JSON, empty, all invalid): none published",
                    "content": _json_body(_ref("Rejected")),
                },
                "Unauthorized": {
                    "description": "Missing or wrong bearer token, or no token configured: nothing published",
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": _json_body(_ref("Error")),
                },
                "TooLarge": {
                    "description": f"Body over {max_bytes} bytes (declared or sent): nothing published",
                    "content": _json_body(_ref("Error")),
                },
                "Unavailable": {
                    "description": "Kafka did not confirm in time: retry the same body (ids de-duplicate)",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": _json_body(_ref("Error")),
                },
            },
        },
    }
