"""A worker added and then removed while events flow (two rebalances), two workers staying: 0 missing
and 0 duplicated against the ledger in ClickHouse and the table state, no_engagement alerts equal to a
clean replay, each announced once (`make reliability`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.devtools.faultrun.scenarios import run_with_membership_changes

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.mark.timeout(600)
def test_worker_added_and_removed_while_events_flow(tmp_path: Path) -> None:
    run = run_with_membership_changes(tmp_path, seed=40)
    report = run.report
    assert run.newcomer_partitions and run.newcomer_applied > 0  # the join did move partitions
    assert sorted(p for owned in run.others_after for p in owned) == list(range(8))  # handed back
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.clickhouse.wrong_keys
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.state.wrong_keys
    assert report.alerts_expected > 0
    assert (report.alerts_missing, report.alerts_extra) == ([], []), report.line()
    assert report.announced_twice == [], report.announced_twice
    assert report.notes == [], report.notes
