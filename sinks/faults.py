"""Fault injection for the sink path (tests and drills only; off unless LDE_FAULT_FILE is set).

chDB runs inside the worker, so "ClickHouse unreachable" cannot be caused from outside the process.
Instead the worker's sink wrapper asks this switch before and after every ClickHouse write. The
switch reads a small text file, `MODE UNTIL`, UNTIL being a Unix time:

- `fail 1767225600.0`: every write raises SinkFaultInjected until then (ClickHouse "down");
- `stall 1767225600.0`: every write lands, then the write call blocks until then (a kill during the
  stall falls between the ClickHouse write and the state write, the riskiest moment).

No file, an unreadable file or a past time: no fault. The file is checked at most every 0.2 s.
"""

from __future__ import annotations

import time
from pathlib import Path


class SinkFaultInjected(ConnectionError):
    """Raised instead of a ClickHouse write while an injected outage lasts."""


class FaultSwitch:
    """Reads LDE_FAULT_FILE (see the module docstring); `None` path: never a fault."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._checked = 0.0
        self._mode = ""
        self._until = 0.0

    def _read(self) -> tuple[str, float]:
        now = time.monotonic()
        if self.path is None:
            return "", 0.0
        if now - self._checked >= 0.2:
            self._checked = now
            try:
                mode, until = self.path.read_text().split()
                self._mode, self._until = mode, float(until)
            except (OSError, ValueError):
                self._mode, self._until = "", 0.0
        return self._mode, self._until

    def before_write(self, sink: str) -> None:
        """Raise while a `fail` fault is active."""
        mode, until = self._read()
        if mode == "fail" and time.time() < until:
            raise SinkFaultInjected(
                f"injected fault: ClickHouse unreachable for sink {sink} (LDE_FAULT_FILE)"
            )

    def after_write(self, sink: str) -> None:
        """Block (in the writer thread) while a `stall` fault is active."""
        mode, until = self._read()
        while mode == "stall" and time.time() < until:
            time.sleep(min(0.1, max(0.0, until - time.time())))
            mode, until = self._read()


def inject(path: Path, mode: str, seconds: float) -> None:
    """Start a fault of `mode` ('fail' or 'stall') for `seconds` from now (the harness's side)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{mode} {time.time() + seconds:.3f}\n")
    tmp.replace(path)
