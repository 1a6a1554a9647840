"""A worker takes over partitions with days of backlog (their owner froze, then died) while its own
partitions are days ahead: every event is still counted, none set aside as too late, and the
no_engagement alerts equal a clean replay's. In `make test` (~80 s): the code before the fix lost
720 events of the four partitions taken over here (RELIABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.devtools.faultrun.scenarios import run_with_backlog_takeover

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(600)
def test_takeover_of_partitions_with_days_of_backlog(tmp_path: Path) -> None:
    run = run_with_backlog_takeover(tmp_path, seed=60)
    report = run.report
    assert run.backlog_days >= 5  # more days than the 72 h lateness limit
    assert run.survivor_partitions == list(range(8))  # it did take the frozen worker's partitions
    assert report.too_late == 0, report.line()
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.line()
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.line()
    assert (report.alerts_missing, report.alerts_extra) == ([], []), report.line()
    assert report.announced_twice == [], report.announced_twice
