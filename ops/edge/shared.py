"""What the edge's HTTP handlers share (the collector's endpoints and the xAPI resource): the bearer
check, the capped body read and the time limits. A leaf of ops.edge, so neither handler imports the
other to get them.
"""

from __future__ import annotations

import hmac
from typing import Any

#: Larger bodies are parsed in a worker thread, so the agents and the evaluator on the loop keep running.
THREAD_THRESHOLD_BYTES = 256 * 1024
#: How long Kafka may take to confirm a request's messages before the client is told to retry (503).
PUBLISH_TIMEOUT_SECONDS = 30.0


def check_bearer(header: str | None, expected: str | None) -> str | None:
    """Why a request is refused, or None when its bearer token is this endpoint's (constant time)."""
    if not expected:
        return (
            "no token is configured for this endpoint, so it accepts no request "
            "(secure by default: the operator sets LDE_COLLECTOR_TOKENS)"
        )
    scheme, _, given = (header or "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return "missing bearer token: send 'Authorization: Bearer <token>'"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "invalid bearer token for this endpoint"
    return None


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
