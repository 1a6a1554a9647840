"""Two workers over 8 partitions, kill -9 at three kinds of moment per run (mid-batch, during a
stalled ClickHouse write, while a restarted worker recovers its tables), over a range of seeds:
0 missing and 0 duplicated against the ledger, per (student, day, source), in ClickHouse and in
the table state.

Seeds: LDE_FAULT_SEEDS="first:last" (default "1:1"); kills per run: LDE_FAULT_KILLS (default 3);
workload: LDE_FAULT_STUDENTS (200), LDE_FAULT_DAYS (12), LDE_FAULT_FEED_PAUSE (2.0 s a day).
Each run's line is appended to LDE_FAULT_REPORT (default .lde-fault-runs.txt) for RELIABILITY.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops.devtools.faultrun.scenarios import run_with_kills

pytestmark = [pytest.mark.integration]


def seeds() -> list[int]:
    first, _, last = os.environ.get("LDE_FAULT_SEEDS", "1:1").partition(":")
    return list(range(int(first), int(last or first) + 1))


@pytest.mark.reliability
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", seeds())
def test_two_workers_kill_9_lose_and_double_nothing(tmp_path: Path, seed: int) -> None:
    report = run_with_kills(
        tmp_path,
        seed,
        kills=int(os.environ.get("LDE_FAULT_KILLS", "3")),
        students=int(os.environ.get("LDE_FAULT_STUDENTS", "200")),
        days=int(os.environ.get("LDE_FAULT_DAYS", "12")),
        feed_pause=float(os.environ.get("LDE_FAULT_FEED_PAUSE", "2.0")),
    )
    with Path(os.environ.get("LDE_FAULT_REPORT", ".lde-fault-runs.txt")).open("a") as out:
        out.write(report.line() + "\n")
    assert report.kills >= 3
    assert report.too_late == 0, report.line()
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.clickhouse.wrong_keys
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.state.wrong_keys
    assert report.alerts_expected > 0
    assert (report.alerts_missing, report.alerts_extra) == ([], []), report.line()
    assert report.announced_twice == [], report.announced_twice
    assert report.notes == [], report.notes


@pytest.mark.timeout(600)
def test_two_workers_kill_9_short(tmp_path: Path) -> None:
    """The short form for `make test`: one seed, a smaller term, the same three kills and checks."""
    report = run_with_kills(tmp_path, seed=101, students=100, days=8, feed_pause=1.5)
    assert report.kills >= 3
    assert report.too_late == 0, report.line()
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.clickhouse.wrong_keys
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.state.wrong_keys
    assert (report.alerts_missing, report.alerts_extra) == ([], []), report.line()
    assert report.announced_twice == [], report.announced_twice
