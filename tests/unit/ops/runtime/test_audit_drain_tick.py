"""The audit spool's tick gives way to a day being judged (issue 26: chDB's one lane is the
judgement's then); the rows wait in Redis for the next tick, and the drain at stop never waits."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from ops.runtime.wiring import StaffSurface


def test_the_tick_drains_unless_a_day_is_being_judged() -> None:
    judging = [True]
    drained: list[int] = []

    async def drain_audit() -> None:
        drained.append(1)

    surface: Any = SimpleNamespace(views=SimpleNamespace(paused=lambda: judging[0]), drain_audit=drain_audit)
    asyncio.run(StaffSurface.drain_audit_when_free(surface))
    assert drained == []
    judging[0] = False
    asyncio.run(StaffSurface.drain_audit_when_free(surface))
    assert drained == [1]
