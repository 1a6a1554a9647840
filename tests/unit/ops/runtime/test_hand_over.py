"""A process that serves staff hands the interpreter lock over sooner (issue 26): a page changes
thread several times, each time waiting up to the switch interval behind the stream."""

from __future__ import annotations

import sys

from ops.runtime.wiring import hand_over_sooner
from ops.settings import Settings


def test_the_switch_interval_is_the_settings() -> None:
    before = sys.getswitchinterval()
    try:
        hand_over_sooner(Settings(interpreter_switch_seconds=0.002))
        assert abs(sys.getswitchinterval() - 0.002) < 1e-9
        hand_over_sooner(Settings())
        assert abs(sys.getswitchinterval() - 0.001) < 1e-9  # the default: a fifth of Python's
    finally:
        sys.setswitchinterval(before)
