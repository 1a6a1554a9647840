"""The xAPI statements resource (xAPI 1.0.3 / IEEE 9274.1.1, statement consumer side), served by the
running service beside the collector: `POST /xapi/statements` (one statement or an array: 200 and
the ids), `PUT /xapi/statements?statementId=` (204), `GET /xapi/about`.

A thin shell: models.xapi_statements decides (versions, ids, digests, voids, conflicts), the
statement ledger (sinks.statement_ledger, Redis) remembers, and the edge's one publisher
(models.envelopes, sinks.kafka.WorkerPublisher) publishes (a 200 or 204 is sent only once Kafka has
confirmed the events and the ledger has recorded them). Every answer
carries X-Experience-API-Version. Credentials: HTTP Basic (LDE_COLLECTOR_BASIC_CREDENTIALS, hashed)
or the xapi source's bearer token; without either configured every request is refused.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.clock import Clock
from models.envelopes import envelopes
from models.event_time import TimeWindow, accepting
from models.events import ActivityEvent
from models.xapi_statements import (
    VERSION_HEADER,
    VERSIONS,
    Plan,
    Prepared,
    StatementsRefused,
    check_version,
    plan_prepared,
    prepare,
    read_statements,
    resolve_races,
    response_version,
    targets,
)
from ops.edge.basic_auth import BasicCredentials
from ops.edge.endpoints import XAPI_ABOUT_PATH, XAPI_STATEMENTS_PATH
from ops.edge.shared import THREAD_THRESHOLD_BYTES, check_bearer, read_limited
from ops.http.proxy import FORWARDED_FOR, client_address, parse_networks
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.kafka import EnvelopeSender
from sinks.statement_ledger import AsyncStatementLedger
from streams.gc_pause import collector_paused

log = logging.getLogger("lde.collector")

STATEMENTS_PATH = XAPI_STATEMENTS_PATH
ABOUT_PATH = XAPI_ABOUT_PATH
PATHS = (STATEMENTS_PATH, ABOUT_PATH)
SOURCE = "xapi"  # whose credentials the resource takes
METRIC_ENDPOINT = "xapi_statements"
BASIC_REALM = 'Basic realm="lde-xapi"'


@dataclass(frozen=True)
class Answer:
    """A response before Faust renders it: a JSON body, or none (204)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, headers: dict[str, str]) -> Answer:
    return Answer(status, {"error": message, "status": status}, headers)


class XapiResource:
    """The resource's state: settings, metrics, the publisher, credentials and the ledger."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        tokens: Mapping[str, str],
        publisher: EnvelopeSender,
        ledger: AsyncStatementLedger | None,
        clock: Clock,
    ) -> None:
        """`tokens`: the collector's bearer token per source (the xapi one is taken too); `clock`: the
        stream's, against which a statement's time is bounded."""
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.publisher = publisher
        self.ledger = ledger
        self.max_bytes = settings.collector_max_bytes
        hashes = settings.collector_basic_credentials.get(SOURCE, {})
        self.basic = BasicCredentials(
            {key: value.get_secret_value() for key, value in hashes.items()},
            failures_per_minute=settings.auth_failures_per_minute,
        )
        self.proxies = parse_networks(settings.trusted_proxies)
        if len(self.basic.hashes) < len(hashes):
            log.warning(
                "xapi_basic_credentials_ignored count=%d: not hashes from `lde collector hash-secret`",
                len(hashes) - len(self.basic.hashes),
            )
        self.token = tokens.get(SOURCE)
        if not self.basic and not self.token:
            log.warning("xapi_resource_closed: no Basic credentials or xapi token configured, it answers 401")

    def refusal(self, header: str | None) -> str | None:
        """Why the Authorization header is refused: Basic credentials, or the xapi bearer token."""
        scheme = (header or "").strip().partition(" ")[0].lower()
        if scheme == "bearer" and self.token:
            return check_bearer(header, self.token)
        if self.basic:
            return self.basic.refusal(header)
        if self.token:
            return check_bearer(header, self.token)
        return (
            "no credentials are configured for the xAPI resource, so it accepts no request "
            "(secure by default: the operator sets LDE_COLLECTOR_BASIC_CREDENTIALS)"
        )

    async def about(self, request: Any) -> Answer:
        """GET /xapi/about: the versions (no credentials or version header needed, as xAPI says)."""
        headers = {VERSION_HEADER: response_version(request.headers.get(VERSION_HEADER))}
        return Answer(200, {"version": list(VERSIONS)}, headers)

    async def statements(self, request: Any, method: str) -> Answer:
        started = time.perf_counter()
        answer = await self._statements(request, method)
        metrics = self.metrics
        metrics.collector_requests.labels(endpoint=METRIC_ENDPOINT, status=str(answer.status)).inc()
        metrics.collector_seconds.labels(endpoint=METRIC_ENDPOINT).observe(time.perf_counter() - started)
        return answer

    async def _statements(self, request: Any, method: str) -> Answer:
        given = request.headers.get(VERSION_HEADER)
        headers = {VERSION_HEADER: response_version(given)}
        # Authorise before reading: an unauthorised client cannot make the service buffer anything.
        authorization = request.headers.get("Authorization")
        address = client_address(request.remote, request.headers.get(FORWARDED_FOR), self.proxies)
        wait = self.basic.wait(authorization, address) if self.basic else 0.0
        if wait > 0:  # before the hash: a flood of bad secrets costs no scrypt
            retry = str(max(1, round(wait)))
            return _error(
                429,
                f"too many failed credentials from this address or for this key: retry in {retry} s",
                {**headers, "Retry-After": retry},
            )
        refused = (
            await asyncio.to_thread(self.refusal, authorization)
            if self.basic.needs_hashing(authorization)
            else self.refusal(authorization)
        )
        if refused is not None:
            if self.basic:
                self.basic.failed(authorization, address)
            return _error(401, refused, {**headers, "WWW-Authenticate": BASIC_REALM})
        why = check_version(given)
        if why is not None:
            return _error(400, why, headers)
        statement_id = None
        if method == "PUT":
            statement_id = request.query.get("statementId")
            if not statement_id:
                return _error(400, "PUT needs the statementId parameter", headers)
        limit = self.max_bytes
        body = await read_limited(request, limit)
        if body is None:
            return _error(
                413,
                f"request body larger than {limit} bytes: nothing was stored; send fewer statements",
                headers,
            )
        if self.ledger is None:
            return _error(
                503, "the statement ledger (Redis) is not available", {**headers, "Retry-After": "5"}
            )
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _error(400, "not UTF-8 text", headers)
        try:
            plan = await self._plan(text, statement_id, big=len(body) > THREAD_THRESHOLD_BYTES)
            await self._carry_out(plan)
        except StatementsRefused as refusal:
            return _error(refusal.status, refusal.reason, headers)
        except Exception as error:  # Redis or Kafka failed: the client retries, the ids make it safe
            log.error("xapi_statements_failed error=%r", error)
            return _error(
                503,
                "the statements could not be stored: send the same request again",
                {**headers, "Retry-After": "5"},
            )
        outcome = plan.outcome()
        self._count(plan)
        log.info(
            "xapi_statements method=%s statements=%d %s",
            method,
            len(plan.ids),
            " ".join(f"{k}={v}" for k, v in outcome.items()),
        )
        headers["X-LDE-Outcome"] = json.dumps(outcome, separators=(",", ":"))
        if method == "PUT":
            return Answer(204, None, headers)
        return Answer(200, plan.ids, headers)

    async def _plan(self, text: str, statement_id: str | None, *, big: bool) -> Plan:
        """Read and prepare the statements, look their ids (and their voids' targets) up, and plan.

        Reading and preparing run with the cyclic collector paused and keep only what planning needs,
        so the request's thousands of parsed JSON containers are freed by reference counting before
        any collection sees them: alive across the ledger's await, each request promoted them to the
        old generation and set off full collections of the whole service (a third of the resource's
        time went to parsing in profiles, most of it in those collections)."""
        assert self.ledger is not None
        window = self.settings.event_time_window(self.clock.now())
        work = functools.partial(_read_and_prepare, text, statement_id, datetime.now(UTC).isoformat(), window)
        prepared = await asyncio.to_thread(work) if big else work()
        known = await self.ledger.entries(targets(prepared))
        return plan_prepared(prepared, known)

    async def _carry_out(self, plan: Plan) -> None:
        """Publish, then record (a crash between the two re-publishes on the client's retry, and the
        stream de-duplicates by id); ids another request recorded meanwhile are resolved at once."""
        assert self.ledger is not None
        await self._publish(plan.events, plan.retract)
        lost = await self.ledger.add(plan.new)
        await self.ledger.replace(plan.replace)
        if lost:
            late = resolve_races(plan.new, lost)
            await self._publish([], late.retract)
            await self.ledger.replace(late.replace)
            plan.retract += late.retract

    async def _publish(self, events: list[ActivityEvent], retract: list[ActivityEvent]) -> None:
        s = self.settings
        messages = envelopes(
            events, partitions=s.partitions, max_events=s.envelope_max_events, retract=retract
        )
        await self.publisher.publish(messages)

    def _count(self, plan: Plan) -> None:
        records = self.metrics.collector_records
        for outcome, count in (
            ("accepted", len(plan.events)),
            ("duplicate", plan.same),
            ("skipped", len(plan.skipped)),
            ("retracted", len(plan.retract)),
        ):
            if count:
                records.labels(endpoint=METRIC_ENDPOINT, outcome=outcome).inc(count)


def _read_and_prepare(
    text: str, statement_id: str | None, stored: str, window: TimeWindow | None
) -> list[Prepared]:
    """The statements read and prepared; a statement whose time is outside `window` is invalid (400)."""
    with collector_paused(), accepting(window):
        return prepare(read_statements(text, lambda: str(uuid.uuid4()), statement_id), stored)
