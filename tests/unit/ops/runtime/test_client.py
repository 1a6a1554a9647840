"""The service client presents the data folder's operator token when this user can read it, and
nothing when it cannot (then the service answers 401 to personal-data requests); a read the service
is too busy for (503 with Retry-After) is asked again as told, a few times; a write never is."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops.runtime.client import BUSY_TRIES, ServiceClient
from ops.settings import Settings
from ops.staff.auth.local import OS_USER_HEADER, ensure_operator_token


def test_the_token_is_presented_when_readable(tmp_path: Path) -> None:
    client = ServiceClient(Settings(data_dir=tmp_path))
    assert client._headers({"X-LDE-Staff": "S1042"}) == {"X-LDE-Staff": "S1042"}  # no service yet: no token
    token = ensure_operator_token(Settings(data_dir=tmp_path).operator_token_path)
    headers = client._headers({"X-LDE-Staff": "S1042"})
    assert headers["Authorization"] == f"Bearer {token}" and headers[OS_USER_HEADER]
    # a caller's own Authorization (a personal token) is never replaced by the operator's
    assert client._headers({"Authorization": "Bearer lde_pat_x"}) == {"Authorization": "Bearer lde_pat_x"}


class Busy(BaseHTTPRequestHandler):
    """Answers the first `busy` requests 503 (with `retry_after`, when not empty), then 200."""

    busy = 0
    retry_after = "0"
    seen: list[str] = []

    def answer(self) -> None:
        type(self).seen.append(self.command)
        if len(self.seen) <= self.busy:
            self.send_response(503)
            if self.retry_after:
                self.send_header("Retry-After", self.retry_after)
            body = json.dumps({"status": 503}).encode()
        else:
            self.send_response(200)
            body = json.dumps({"status": 200}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def busy_service(tmp_path: Path) -> Iterator[tuple[ServiceClient, type[Busy]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Busy.seen = []
    try:
        yield ServiceClient(Settings(data_dir=tmp_path, web_port=server.server_address[1]), timeout=5), Busy
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("busy", "retry_after", "method", "status", "asked"),
    [
        (1, "0", "GET", 200, 2),  # busy once: asked again, answered
        (BUSY_TRIES, "0", "GET", 503, BUSY_TRIES),  # busy every time: the busy answer, after the tries
        (1, "", "GET", 503, 1),  # a 503 without Retry-After is not "busy": not asked again
        (1, "0", "POST", 503, 1),  # a write is never sent twice
    ],
)
def test_a_busy_read_is_asked_again_as_told(
    busy_service: tuple[ServiceClient, type[Busy]],
    busy: int,
    retry_after: str,
    method: str,
    status: int,
    asked: int,
) -> None:
    client, handler = busy_service
    handler.busy, handler.retry_after = busy, retry_after
    answer = client.get("/v1/x") if method == "GET" else client.post("/v1/x")
    assert answer == {"status": status}
    assert handler.seen == [method] * asked
