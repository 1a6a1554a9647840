"""HTTP collector served by the running service: POST /v1/caliper, /v1/xapi/statements, /v1/events.

(Being written: see register_collector.)
"""

from __future__ import annotations

from typing import Any


def register_collector(app: Any, lde: Any) -> None:
    """Add the collector's endpoints to the Faust web app (called by streams.app.LdeApp)."""
