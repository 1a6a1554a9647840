"""Bad input is contained: CSV rows and JSONL lines are errors with positions; a broken upstream stops
the ingest with a clear message."""

from pathlib import Path

import pytest

from models.adapters import Invalid, Parsed, read_lde_jsonl
from models.roster import CsvRowError, RosterRecord, load_roster
from ops.edge.ingest import InvalidShareGuard, UpstreamBroken
from tests.fixtures import upstream


def test_roster_sample_loads_and_bad_rows_carry_line_numbers(tmp_path: Path) -> None:
    records = list(load_roster(upstream.path(upstream.ROSTER)))
    assert all(isinstance(r, RosterRecord) for r in records)
    assert len(records) == 5
    bad = tmp_path / "roster.csv"
    bad.write_text(
        "student_id,programme_code,year_of_study,mode,status,start_date\n"
        "1,BSC-CS,1,FT,active,2026-09-21\n"
        "2,BSC-CS,one,FT,active,2026-09-21\n"
        "3,BSC-CS,1,XX,active,2026-09-21\n"
    )
    items = list(load_roster(bad))
    assert isinstance(items[0], RosterRecord)
    errors = [i for i in items if isinstance(i, CsvRowError)]
    assert [e.line for e in errors] == [3, 4]
    assert "year_of_study" in errors[0].reason
    assert "mode" in errors[1].reason


def test_jsonl_reader_reports_line_numbers_and_skips_blank_lines() -> None:
    lines = [
        '{"event_id":"a","student_id":"1","source":"vle","occurred_at":"2026-10-01T10:00:00Z"}\n',
        "\n",
        "{broken\n",
    ]
    results = list(read_lde_jsonl(lines))
    assert [r.position for r in results] == ["line 1", "line 3"]
    assert isinstance(results[0], Parsed)
    assert isinstance(results[1], Invalid)
    assert "JSON" in results[1].reason


def test_guard_stops_a_broken_upstream_but_tolerates_a_few_bad_records() -> None:
    guard = InvalidShareGuard(limit=0.05, window=1000, minimum=200)
    for i in range(1000):
        guard.observe(i % 25 != 0)  # 4% invalid: fine
    broken = InvalidShareGuard(limit=0.05, window=1000, minimum=200)
    with pytest.raises(UpstreamBroken, match="upstream export looks broken"):
        for i in range(1000):
            broken.observe(i % 10 != 0)  # 10% invalid


def test_guard_waits_for_a_minimum_sample() -> None:
    guard = InvalidShareGuard(limit=0.05, window=1000, minimum=10)
    for _ in range(5):
        guard.observe(False)  # bad lines at the start of a file do not stop it on their own
    for _ in range(4):
        guard.observe(True)
    with pytest.raises(UpstreamBroken, match="5 of the last 10"):
        guard.observe(True)
