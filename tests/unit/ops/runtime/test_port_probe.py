"""The broker's port probe: a busy listener stays busy however often it is asked."""

from __future__ import annotations

import socket

from ops.runtime.embedded import port_in_use


def test_a_listener_with_a_full_backlog_still_counts_as_in_use() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        # A connect probe would fill the backlog and then read "free"; twenty asks must all say busy.
        assert all(port_in_use("127.0.0.1", port) for _ in range(20))


def test_a_released_port_counts_as_free() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
    assert not port_in_use("127.0.0.1", port)
