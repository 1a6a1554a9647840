"""`lde edge`'s publisher (issue 26) without a broker: nothing to send is a no-op, and a publish
before `start` is a bug that says so (the broker path is tests/integration/test_standalone.py)."""

from __future__ import annotations

import asyncio

import pytest

from ops.settings import Settings
from sinks.kafka import EdgePublisher


def test_nothing_to_send_needs_no_producer() -> None:
    asyncio.run(EdgePublisher(Settings(), 1.0).publish([]))


def test_a_publish_before_start_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(EdgePublisher(Settings(), 1.0).publish([(0, b"envelope")]))
