"""What the commands share: how they fail, and where they read (the running service, or
ClickHouse directly when none runs).
"""

from __future__ import annotations

import sys
from typing import Any

from ops.runtime.client import ServiceClient
from ops.settings import Settings
from sinks.errors import StackError


def fail(message: str, code: int = 2) -> int:
    """Say what went wrong on standard error, one line; returns the exit code to give."""
    print(f"lde: {message}", file=sys.stderr)
    return code


def direct_store(settings: Settings) -> tuple[Any, str]:
    """Open ClickHouse from this process (only when no service holds the chDB folder)."""
    from ops.runtime.embedded import owner_only
    from sinks import clickhouse

    owner_only(settings)  # chDB may create parts here: the operator's alone, as under `lde up`
    try:
        store = clickhouse.ClickHouseStore(clickhouse.connect(settings))
        clickhouse.migrate(store.client)
    except Exception as error:
        raise StackError(f"no service is running and ClickHouse could not be opened: {error}") from None
    where = "directly from chDB (no service running)" if settings.mode == "embedded" else "from ClickHouse"
    return store, where


def running_service(settings: Settings) -> ServiceClient | None:
    """A client of the service when one is running (it holds the stores then), else None."""
    client = ServiceClient(settings, timeout=600)
    return client if client.running() else None
