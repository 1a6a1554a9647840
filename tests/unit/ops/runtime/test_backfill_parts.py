"""lde backfill's parts without an engine: the progress line, the checkpoint, the day spool."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.activity import StudentActivity
from models.envelopes import envelopes
from models.evaluation import StudentMemory
from models.event_time import TimeWindow
from models.events import ActivityEvent, event_record
from ops.runtime.backfill.appliers import shares
from ops.runtime.backfill.checkpoint import Checkpoint, CheckpointMismatch
from ops.runtime.backfill.progress import Figures, ProgressBar, duration, progress_line, time_left
from ops.runtime.backfill.spool import DaySpool, InputFile, SpooledFile, pieces, read_day, spool_file, spooled
from ops.settings import Settings


def event(eid: str, sid: str, when: str, source: str = "vle") -> ActivityEvent:
    return ActivityEvent.model_validate(
        {"event_id": eid, "student_id": sid, "source": source, "occurred_at": when}
    )


# -- progress ----------------------------------------------------------------------------------------
def test_durations_read_as_a_person_would_say_them() -> None:
    assert [duration(s) for s in (0, 44.6, 185, 3725, -3)] == ["0s", "45s", "3m05s", "1h02m", "0s"]


def test_time_left_is_the_rate_so_far_applied_to_what_remains() -> None:
    assert time_left(25, 100, 10.0) == 30.0
    assert time_left(0, 100, 10.0) is None  # no rate yet
    assert time_left(100, 100, 10.0) == 0.0


def test_a_judging_line_names_events_rate_days_and_time_left() -> None:
    line = progress_line(Figures("judge", 50, 200, 1_234_567, 21, 84, 30.0, 30.0))
    assert "[######------------------]  25%" in line
    assert "1,234,567 events" in line and "41,152/s" in line
    assert "21/84 days" in line and "0.70 days/s" in line
    assert line.endswith("1m30s left")
    assert progress_line(Figures("read", 10, 10, 5, 0, 0, 1.0)).endswith("done")
    assert "days" not in progress_line(Figures("read", 1, 10, 5, 0, 0, 1.0))


def test_off_a_terminal_plain_lines_at_most_every_period_and_at_the_end() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, tty=False, clock=lambda: now[0], plain_every=10.0)
    figures = Figures("read", 1, 10, 5, 0, 0, 1.0)
    for moment in (0.0, 3.0, 9.9, 10.0, 12.0):
        now[0] = moment
        bar.show(figures)
    bar.show(figures, final=True)
    lines = out.getvalue().split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # at 0, at 10, the final one
    assert "\r" not in out.getvalue()


def test_on_a_terminal_one_line_redrawn_in_place_then_ended() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, tty=True, clock=lambda: now[0])
    bar.show(Figures("judge", 1, 10, 123_456, 1, 10, 1.0, 1.0))
    now[0] = 1.0
    bar.show(Figures("judge", 10, 10, 5, 10, 10, 2.0, 2.0), final=True)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    first, second = text.split("\r")[1:]
    assert len(second.rstrip("\n")) >= len(first)  # the longer line before is blanked out


# -- checkpoint --------------------------------------------------------------------------------------
def test_a_checkpoint_reads_back_as_written(tmp_path: Path) -> None:
    state = StudentActivity()
    state.apply([event("e1", "s1", "2026-10-01T10:00:00Z")], 7, ZoneInfo("UTC"))
    memory = StudentMemory(low_streak=2)
    written = Checkpoint(
        {"inputs": ["a"]},
        date(2026, 10, 1),
        date(2026, 9, 21),
        {0: 12, 3: 4},
        {"s1": state, "s2": StudentActivity()},
        {"s1": memory},
        {"alert-1"},
        {"events_applied": 1},
    )
    path = tmp_path / "checkpoint.bin"
    written.save(path)
    read = Checkpoint.load(path, {"inputs": ["a"]})
    assert read == written
    assert read.states["s1"].counts(date(2026, 10, 1).toordinal()) == state.counts(
        date(2026, 10, 1).toordinal()
    )
    assert not path.with_name("checkpoint.bin.tmp").exists()


def test_no_checkpoint_is_a_fresh_start_and_another_backfills_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.bin"
    assert Checkpoint.load(path, {"inputs": ["a"]}).through is None
    Checkpoint({"inputs": ["a"]}, date(2026, 10, 1)).save(path)
    with pytest.raises(CheckpointMismatch, match="--restart"):
        Checkpoint.load(path, {"inputs": ["b"]})
    path.write_bytes(b"something else")
    with pytest.raises(ValueError, match="not a backfill checkpoint"):
        Checkpoint.load(path, {"inputs": ["a"]})


# -- the day spool -----------------------------------------------------------------------------------
def test_the_spool_sorts_events_by_local_day_into_the_envelopes_ingest_would_publish(tmp_path: Path) -> None:
    day_one = [event(f"a{i}", f"s{i % 7}", f"2026-10-24T{10 + i % 10}:00:00Z") for i in range(30)]
    late_evening = event("late", "s1", "2026-10-24T23:30:00Z")  # 00:30 BST: 25 October in London
    day_two = [event(f"b{i}", f"s{i % 5}", "2026-10-25T12:00:00Z") for i in range(12)]
    spool = DaySpool(tmp_path, partitions=4, max_events=8, timezone="Europe/London")
    mixed = [day_one[0], late_evening, *day_two[:6], *day_one[1:], *day_two[6:], day_two[0]]
    spool.add([event_record(e) for e in mixed])
    spool.finish()
    first, second = date(2026, 10, 24).toordinal(), date(2026, 10, 25).toordinal()
    assert spool.events_by_day == {first: 30, second: 13}
    assert spool.summary.duplicates == 1 and spool.summary.accepted == 43
    by_partition = lambda messages: sorted(messages)  # noqa: E731 - a partition's order is kept
    assert by_partition(read_day(tmp_path, first)) == by_partition(
        envelopes(day_one, partitions=4, max_events=8)
    )
    assert by_partition(read_day(tmp_path, second)) == by_partition(
        envelopes([late_evening, *day_two], partitions=4, max_events=8)
    )
    assert list(read_day(tmp_path, first + 5)) == []


def spool(item: InputFile, folder: Path) -> SpooledFile:
    return spool_file(
        item,
        folder,
        partitions=4,
        max_events=100,
        timezone="Europe/London",
        window=Settings().event_time_window(None),
    )


def test_bad_lines_are_dead_lettered_with_reason_and_line_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = [event(f"e{i}", "s1", f"2026-10-0{1 + i % 3}T10:00:00Z").model_dump_json() for i in range(300)]
    lines = [
        *good[:100],
        '{"event_id": "x", "title": "secret"',
        *good[100:200],
        '{"event_id":"y"}',
        *good[200:],
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = spool(InputFile(path, "lde-jsonl"), tmp_path / "spool")
    assert spooled(tmp_path / "spool") == done
    assert (done.accepted, done.invalid) == (300, 2)
    letters = [json.loads(line) for line in (tmp_path / "spool" / "dead_letters.jsonl").open()]
    assert [letter["position"] for letter in letters] == [f"{path}:line 101", f"{path}:line 202"]
    assert all(letter["reason"] and letter["source"] == "lde-jsonl" for letter in letters)
    assert "secret" not in (tmp_path / "spool" / "dead_letters.jsonl").read_text()  # redacted, as ingest does


def test_an_adapter_format_spools_through_its_adapter(tmp_path: Path) -> None:
    path = tmp_path / "logons.csv"
    path.write_text(
        "timestamp,username,computer,event,site\n"
        "2026-10-01T09:00:00Z,900000001,LIB-PC-01,logon,Main Library\n"
        "2026-10-01T10:00:00Z,900000001,LIB-PC-01,logoff,Main Library\n"
        "not a time,900000001,LIB-PC-01,logon,Main Library\n"
    )
    done = spool(InputFile(path, "pc-logons"), tmp_path / "spool")
    assert (done.accepted, done.invalid, sum(done.skipped.values())) == (1, 1, 1)
    assert done.events_by_day == {date(2026, 10, 1).toordinal(): 1}


def test_a_spool_cut_short_is_not_taken_as_done_and_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(event("e1", "s1", "2026-10-01T10:00:00Z").model_dump_json() + "\n")
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / f"{date(2026, 10, 1).toordinal()}.envelopes").write_bytes(b"\x00\x01half an envelope")
    assert spooled(folder) is None
    done = spool(InputFile(path, "lde-jsonl"), folder)
    assert done.accepted == 1
    assert len(list(read_day(folder, date(2026, 10, 1).toordinal()))) == 1


def test_event_times_before_the_floor_are_refused_at_the_spool(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        event("e1", "s1", "1999-12-31T10:00:00Z").model_dump_json()
        + "\n"
        + event("e2", "s1", "2026-10-01T10:00:00Z").model_dump_json()
        + "\n"
    )
    window = TimeWindow.around(None, date(2000, 1, 1), None)
    done = spool_file(
        InputFile(path, "lde-jsonl"),
        tmp_path / "spool",
        partitions=2,
        max_events=100,
        timezone="Europe/London",
        window=window,
    )
    assert (done.accepted, done.invalid) == (1, 1)
    (letter,) = [json.loads(line) for line in (tmp_path / "spool" / "dead_letters.jsonl").open()]
    assert "2000-01-01" in letter["reason"]


def test_a_large_canonical_file_is_read_in_pieces_of_whole_lines_numbered_as_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.runtime.backfill.spool as spool_module

    monkeypatch.setattr(spool_module, "SPLIT_BYTES", 1)
    times = [f"2026-10-0{1 + i % 5}T10:00:00Z" for i in range(500)]
    lines = [event(f"e{i}", f"s{i % 9}", when).model_dump_json() for i, when in enumerate(times)]
    lines[400] = '{"event_id": "broken"'
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    whole = InputFile(path, "lde-jsonl")
    cut = pieces(whole, 3)
    assert len(cut) == 3 and cut[0].start == 0 and cut[-1].stop == path.stat().st_size
    assert [a.stop for a in cut[:-1]] == [b.start for b in cut[1:]]
    assert [p.first_line for p in cut] == [1 + path.read_bytes()[: p.start].count(b"\n") for p in cut]
    done = [spool(piece, tmp_path / f"part{n}") for n, piece in enumerate(cut)]
    assert sum(d.accepted for d in done) == 499 and sum(d.invalid for d in done) == 1
    files = [tmp_path / f"part{n}" / "dead_letters.jsonl" for n in range(3)]
    letters = [json.loads(line) for file in files for line in file.open()]
    assert [letter["position"] for letter in letters] == [f"{path}:line 401"]
    assert pieces(InputFile(path, "pc-logons"), 3) == [InputFile(path, "pc-logons")]  # CSV: a header
    assert pieces(whole, 1) == [whole]


def test_the_partitions_are_shared_in_runs_none_empty() -> None:
    assert shares(8, 2) == [frozenset(range(4)), frozenset(range(4, 8))]
    assert shares(3, 2) == [frozenset({0}), frozenset({1, 2})]
    assert shares(2, 5) == [frozenset({0}), frozenset({1})]
    assert shares(4, 1) == [frozenset(range(4))]
