"""The collector's endpoints: where each upstream source posts, and which adapter reads it.

Adding a source format: an adapter in models.adapters, then one line here (the collector, its
authentication and its OpenAPI document follow from the table).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One collector endpoint: its path, the upstream source whose token it takes, and its adapter."""

    path: str
    source: str
    adapter: str
    summary: str
    #: The body may be a signed JWT whose claims are the record (ops.edge.canvas_signing checks it).
    signed: bool = False
    #: The token may also come as the RFC 6750 `access_token` query parameter, for senders that can be
    #: given only a URL (Canvas Data Services' HTTPS subscription sends no Authorization header).
    query_token: bool = False
    #: The status of a request whose events are in Kafka. 202 unless the senders' standard counts only
    #: others as success (IMS's Caliper sensors count only 200 and 201; Caliper 1.2 recommends 200).
    success_status: int = 202

    @property
    def dead_letter_source(self) -> str:
        """The `source` header of this endpoint's dead letters (the CLI puts the format name there)."""
        return f"http:{self.source}"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/v1/caliper",
        "caliper",
        "caliper",
        "IMS Caliper 1.1 or 1.2 sensors and Canvas live events: one Caliper envelope",
        success_status=200,
    ),
    Endpoint(
        "/v1/xapi/statements",
        "xapi",
        "xapi",
        "xAPI statements: one statement, an array of statements or a StatementResult",
    ),
    Endpoint("/v1/events", "events", "lde-jsonl", "Canonical events: one JSON object, a JSON array or JSONL"),
    Endpoint(
        "/v1/canvas/live-events",
        "canvas",
        "canvas-live-events",
        "Canvas live events in Canvas's format: one event, plain JSON or a signed JWT (Sign Payload)",
        signed=True,
        query_token=True,
    ),
)

#: The xAPI statements resource (ops.edge.xapi_resource): an LRS's paths, Basic credentials or the xapi token.
XAPI_STATEMENTS_PATH = "/xapi/statements"
XAPI_ABOUT_PATH = "/xapi/about"
