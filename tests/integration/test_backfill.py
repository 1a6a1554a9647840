"""`lde backfill` equals live: a simulated term published day by day through the service (`lde up` on the
event clock) and the same term backfilled from its file leave the same rows in ClickHouse (alerts,
daily counts, scores, rule memory, group statistics, progress, roster), also when the backfill is
killed with -9 part-way and run again; and bad lines in the file are dead-lettered, not fatal."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.devtools.replay import EventTimeRun
from ops.devtools.simulator import Profiles, simulate, write_files
from ops.runtime.backfill.checkpoint import MAGIC
from ops.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDE_")}
    return {**env, "LDE_DATA_DIR": str(data_dir), "LDE_PARTITIONS": str(PARTITIONS)}


def stored_rows(data_dir: Path) -> dict[str, list[list[Any]]]:
    """What a stopped run left in ClickHouse (read in a process of its own: chDB opens one folder
    per process)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.chdb_rows", str(data_dir)],
        cwd=ROOT,
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows: dict[str, list[list[Any]]] = json.loads(result.stdout)
    # A live row's version is the student's revision when its batch was written, which depends on
    # how the worker cut its batches; versions only order a student's rows, the counts are absolute.
    rows["activity_daily"] = [row[:-1] for row in rows["activity_daily"]]
    return rows


def judged_through(checkpoint: Path) -> date | None:
    """The last day a backfill's checkpoint holds as judged (None before the first checkpoint)."""
    try:
        data = checkpoint.read_bytes()
    except FileNotFoundError:
        return None
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    header = json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + length])
    return date.fromisoformat(header["through"]) if header["through"] else None


def test_backfill_leaves_the_rows_live_leaves_even_after_a_kill_and_a_resume(tmp_path: Path) -> None:
    sim = simulate(students=150, weeks=5, seed=5, profiles=Profiles(reading_week=None))
    assert sim.absences(), "the term should hold approved absences"
    paths = write_files(sim, tmp_path / "sim")

    live = EventTimeRun(Settings(), tmp_path / "live", evaluate_from=sim.term_start, partitions=PARTITIONS)
    with live:
        live.publish(roster=[s.record for s in sim.students], absences=sim.absences())
        live.publish_days({d: sim.events_on(d) for d in sim.days()}, sim.term_start, sim.term_end)
        assert live.wait_judged_through(sim.term_end, timeout=300)
    expected = stored_rows(tmp_path / "live")
    assert {row[2] for row in expected["alerts"]} >= {"no_engagement", "escalation"}

    # The same events with two bad lines among them (a record cut short, one without its fields).
    lines = paths["events"].read_text().splitlines()
    lines.insert(1000, '{"event_id": "cut-short", "student_id": "9050')
    lines.insert(5000, '{"event_id": "no-fields"}')
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    data = tmp_path / "backfilled"
    work = data / "backfill"
    command = [
        sys.executable,
        "-m",
        "ops.cli",
        "backfill",
        *("--roster", str(paths["roster"]), "--absences", str(paths["absences"])),
        *("--checkpoint-seconds", "0"),
        str(events),
    ]
    killed_after = sim.term_start + timedelta(days=22)  # alerts raised, escalations not yet due
    first = subprocess.Popen(
        command, cwd=ROOT, env=environment(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while (judged_through(work / "checkpoint.bin") or date.min) < killed_after:
            assert first.poll() is None, first.communicate()[1].decode()
            assert time.monotonic() < deadline, "the backfill did not judge its first days in time"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    stopped_at = judged_through(work / "checkpoint.bin")
    assert stopped_at is not None and killed_after <= stopped_at < sim.term_end

    # Resumed with checkpoints far apart, the shares apply each next day while this one judges.
    resumed = [*command[:-3], "--checkpoint-seconds", "600", command[-1]]
    again = subprocess.run(
        resumed, cwd=ROOT, env=environment(data), capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0, again.stderr
    assert f"continued:   after {stopped_at}" in again.stdout
    # Not a terminal: plain progress lines, the last saying the days are done.
    progress = [line for line in again.stderr.splitlines() if line.startswith("judge [")]
    assert progress and "\r" not in again.stderr and progress[-1].endswith("done")
    assert " days/s" in progress[-1] and " events" in progress[-1]
    assert "dead letters: 2 " in again.stdout
    assert judged_through(work / "checkpoint.bin") == sim.term_end
    assert not (work / "spool").exists()  # the events' day spool goes once every day is judged

    backfilled = stored_rows(data)
    for table, rows in expected.items():
        assert rows, f"live wrote no {table} rows: the comparison would prove nothing"
        assert backfilled[table] == rows, table

    letters = [json.loads(line) for line in (work / "dead_letters.jsonl").open()]
    assert [letter["position"] for letter in letters] == [f"{events}:line 1001", f"{events}:line 5001"]
    assert all(letter["reason"] for letter in letters)
    assert "9050" not in (work / "dead_letters.jsonl").read_text()  # redacted: a digest, not the line


def run_backfill(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "backfill", *args],
        cwd=ROOT,
        env=environment(data),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_backfill_says_what_is_wrong_and_stops_cleanly(tmp_path: Path) -> None:
    sim = simulate(students=20, weeks=3, seed=3)
    paths = write_files(sim, tmp_path / "sim")
    roster = ("--roster", str(paths["roster"]))
    data = tmp_path / "data"

    nothing = run_backfill(data, str(paths["events"]))  # no roster given, none loaded
    assert nothing.returncode == 2 and "no roster: give --roster" in nothing.stderr

    reversed_days = run_backfill(
        data, *roster, "--from", "2026-10-10", "--through", "2026-10-01", str(paths["events"])
    )
    assert reversed_days.returncode == 2 and "is after the last" in reversed_days.stderr

    broken = tmp_path / "broken.jsonl"
    good = paths["events"].read_text().splitlines()
    broken.write_text("\n".join(good[:150] + ["not json"] * 60 + good[150:]) + "\n")
    stopped = run_backfill(data, *roster, "--work", str(tmp_path / "w1"), str(broken))
    assert stopped.returncode == 3 and "the upstream export looks broken" in stopped.stderr

    done = run_backfill(data, *roster, "--work", str(tmp_path / "w2"), str(paths["events"]))
    assert done.returncode == 0, done.stderr
    other = run_backfill(data, *roster, "--work", str(tmp_path / "w2"), str(broken))
    assert other.returncode == 2 and "holds a backfill of other inputs" in other.stderr
    for states in (tmp_path / "w2").glob("states-*.bin"):
        states.unlink()
    damaged = run_backfill(data, *roster, "--work", str(tmp_path / "w2"), str(paths["events"]))
    assert damaged.returncode == 2 and "--restart" in damaged.stderr
    again = run_backfill(data, *roster, "--work", str(tmp_path / "w2"), "--restart", str(paths["events"]))
    assert again.returncode == 0, again.stderr
    assert f"judged:      {sim.term_start} to {sim.term_end}: 21 days" in again.stdout


def test_backfill_refuses_while_the_service_runs(tmp_path: Path) -> None:
    """A service answering on the configured port holds chDB and judges the same days: refused."""
    import http.server
    import threading

    from ops.devtools.replay import free_port

    class Live(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        events = tmp_path / "events.jsonl"
        events.write_text("")
        result = subprocess.run(
            [sys.executable, "-m", "ops.cli", "backfill", str(events)],
            cwd=ROOT,
            env={**environment(tmp_path / "data"), "LDE_WEB_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.shutdown()
    assert result.returncode == 2 and "the service is running" in result.stderr
    assert not (tmp_path / "data" / "chdb").exists()  # ClickHouse was never opened


def test_backfill_reads_each_file_in_its_own_format_and_keeps_nothing_private(tmp_path: Path) -> None:
    """The upstream exports of the suite, each in its format (`FORMAT:FILE`), backfilled together:
    every adapter's accepted events applied, its bad records dead-lettered with file and line, and
    none of their titles, URLs or logins stored."""
    from tests.fixtures import upstream

    formats = ["pc-logons", "remote-sessions", "library-loans", "attendance", "papercut", "ezproxy", "xapi"]
    files = [f"{name}:{upstream.path(upstream.FEEDS[name])}" for name in formats]
    data = tmp_path / "data"
    roster = (
        "--roster",
        str(upstream.path(upstream.ROSTER)),
        "--absences",
        str(upstream.path(upstream.ABSENCES)),
    )
    result = run_backfill(data, *roster, *files)
    assert result.returncode == 0, result.stderr
    invalid = int(result.stdout.split(" invalid")[0].rsplit(", ", 1)[1].replace(",", ""))
    assert invalid == 6  # one in each file but remote-sessions (README of the fixtures)
    letters = [json.loads(line) for line in (data / "backfill" / "dead_letters.jsonl").open()]
    assert len(letters) == invalid
    assert {letter["source"] for letter in letters} == set(formats) - {"remote-sessions"}
    assert all(":" in letter["position"] and letter["reason"] for letter in letters)
    accepted = int(result.stdout.split(" events accepted")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert f"{accepted:,} events applied" in result.stdout
    rows = stored_rows(data)
    assert ["900201777", "2026-10-25", "pc_logon", 1, 0] in rows["activity_daily"]  # 23:52Z: local 25 Oct
    dump = json.dumps(rows)
    assert [secret for secret in upstream.private_strings() if secret in dump] == []
