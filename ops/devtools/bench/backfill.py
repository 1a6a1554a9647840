"""`--only backfill`: a simulated term at institution scale backfilled end to end by `lde backfill` (a
fresh process and data folder: reading the file, applying and judging every day, writing ClickHouse),
with the live pipeline's naive and no-op Faust references measured in the same run.

The term is made by the simulator (`simulate(seed=7)`, 12 weeks) and written once as the files
`lde simulate` writes, into a cache folder kept between runs (LDE_BENCH_CACHE, default
.lde/bench-cache). A term of more than BASE_STUDENTS students is the simulator's term of
BASE_STUDENTS made again under new ids (`replicated_term`): the simulator makes about 15,000
events a second on this shared machine, half an hour for 25 million, where copying its lines under
new ids takes a minute; every copy keeps the simulated habits, stops and absences of its original.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ops.devtools.bench.markdown import Results
from ops.devtools.bench.pipeline import publish_raw, run_reference
from ops.devtools.bench.workloads import session_events
from ops.devtools.simulator import Simulation, simulate, write_files
from ops.settings import Settings
from sinks.kafka import ensure_topics

SEED = 7
#: Larger terms are this many simulated students made again under new ids (see the module).
BASE_STUDENTS = 3_000
GOAL_SECONDS = 600
GOAL_BYTES = 4 << 30


def _write_days(students: int, weeks: int, first: int, stop: int, path: Path) -> None:
    """One generating process: the term's days first..stop-1 (indexes), as events.jsonl lines."""
    sim = simulate(students=students, weeks=weeks, seed=SEED)
    with path.open("w") as handle:
        for day in sim.days()[first:stop]:
            for event in sim.events_on(day):
                handle.write(event.model_dump_json(exclude_none=True))
                handle.write("\n")


def simulated_term(students: int, weeks: int, cache: Path) -> Path:
    """The folder of the simulated term's files (made once; `complete` marks a finished one)."""
    folder = cache / f"term-{students}-{weeks}-{SEED}"
    if (folder / "complete").exists():
        return folder
    if students > BASE_STUDENTS:
        base = simulated_term(BASE_STUDENTS, weeks, cache)
        return replicated_term(base, -(-students // BASE_STUDENTS), folder)
    shutil.rmtree(folder, ignore_errors=True)
    sim = simulate(students=students, weeks=weeks, seed=SEED)
    roster_only = Simulation(sim.students, sim.term_start, 0, sim.seed, sim.tz, sim.reading_week)
    write_files(roster_only, folder)  # roster, absences, ground truth; no days, so no events yet
    days = len(sim.days())
    parts = 2
    context = multiprocessing.get_context("spawn")
    pieces = [folder / f"events.{k}.jsonl" for k in range(parts)]
    workers = [
        context.Process(
            target=_write_days,
            args=(students, weeks, k * days // parts, (k + 1) * days // parts, pieces[k]),
        )
        for k in range(parts)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"generating the term failed (exit {worker.exitcode})")
    with (folder / "events.jsonl").open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as handle:
                shutil.copyfileobj(handle, out, 16 << 20)
            piece.unlink()
    (folder / "complete").write_text(f"{students} students, {weeks} weeks, seed {SEED}\n")
    return folder


def copy_id(student_id: str, copy: int) -> str:
    """A simulated student's id in copy `copy` (0 keeps it): the simulator's ids are 9 + two digits
    of the seed + six of the student, so the copies take the seed's digits 10, 11, ... instead."""
    return student_id if copy == 0 else f"9{9 + copy:02d}{student_id[3:]}"


def replicated_term(base: Path, copies: int, folder: Path) -> Path:
    """`base`'s term `copies` times over under new ids (see copy_id), each day's lines of every copy
    together in day order, as one export of the larger institution would list them."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("roster.csv", "absences.csv", "ground_truth.csv"):
        lines = (base / name).read_text().splitlines(keepends=True)
        with (folder / name).open("w") as text:
            text.write(lines[0])
            for copy in range(copies):
                for row in lines[1:]:  # each file's first column is the student id
                    sid, rest = row.split(",", 1)
                    renamed = copy_id(sid, copy)
                    text.write(f"{renamed},{rest.replace(sid + '@', renamed + '@', 1)}")
    marker = b'"student_id":"'
    with (base / "events.jsonl").open("rb") as source, (folder / "events.jsonl").open("wb") as out:
        day: bytes | None = None
        block: list[bytes] = []

        def flush() -> None:
            for copy in range(copies):
                if copy == 0:
                    out.writelines(block)
                    continue
                prefix = copy_id("907", copy).encode()
                out.writelines(
                    event.replace(b"-907", b"-" + prefix, 1).replace(marker + b"907", marker + prefix, 1)
                    for event in block
                )

        for event in source:
            at = event.find(b'"occurred_at":"')
            this = event[at + 15 : at + 25]
            if this != day and block:
                flush()
                block = []
            day = this
            block.append(event)
        if block:
            flush()
    (folder / "simulation.json").write_text((base / "simulation.json").read_text())
    (folder / "complete").write_text(f"{copies} copies of {base.name} under new student ids\n")
    return folder


@dataclass(frozen=True)
class BackfillRun:
    seconds: float
    cpu_seconds: float  # user + system time of the command and every process it started
    peak_rss: int  # the whole process tree's resident memory at its largest (sampled)
    report: str  # the command's own report (standard output)
    events: int
    days: int


class TreeMemory:
    """Samples a process and its children's resident memory (summed) every `period` seconds."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        self.process = psutil.Process(pid)
        self.period = period
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for member in [self.process, *self.process.children(recursive=True)]:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:
                        continue
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop.wait(self.period)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_backfill(term: Path, data_dir: Path, partitions: int, log: Path) -> BackfillRun:
    """`lde backfill` of the term's files in a fresh process and data folder, timed end to end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDE_")}
    env |= {"LDE_DATA_DIR": str(data_dir), "LDE_PARTITIONS": str(partitions)}
    command = [sys.executable, "-m", "ops.cli", "backfill"]
    command += ["--roster", str(term / "roster.csv"), "--absences", str(term / "absences.csv")]
    command += [str(term / "events.jsonl")]
    with log.open("w") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        memory = TreeMemory(process.pid)
        out, _ = process.communicate()
        seconds = time.perf_counter() - started
        peak = memory.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise RuntimeError(f"lde backfill failed ({process.returncode}); see {log}")
    events = days = 0
    for line in out.splitlines():
        if line.startswith("judged:"):
            # judged:      2026-09-21 to 2026-12-13: 84 days, 2,474,286 events applied
            tail = line.split(": ", 2)[-1]
            days = int(tail.split(" days")[0].replace(",", ""))
            events = int(tail.split(", ")[1].split(" events")[0].replace(",", ""))
    return BackfillRun(seconds, cpu, peak, out, events, days)


def bench_backfill(
    results: Results,
    settings: Settings,
    work: Path,
    terms: tuple[tuple[int, int], ...],
    reference_messages: int,
) -> None:
    """Each term (students, weeks) backfilled end to end, then the live references."""
    cache = Path(os.environ.get("LDE_BENCH_CACHE", ".lde/bench-cache")).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    results.note(
        f"backfill: load average {load:.2f} at the start (2 shared cores); each term made by the simulator "
        f"(seed {SEED}, cached in {cache}), then `lde backfill --roster roster.csv --absences absences.csv "
        "events.jsonl` in a fresh process and data folder (embedded chDB, "
        f"{settings.partitions} partitions, default read and apply processes), timed from start to exit; "
        "peak memory is the resident memory of the command and its child processes, summed, sampled "
        "every 0.25 s"
    )
    runs: list[tuple[int, int, BackfillRun]] = []
    for students, weeks in terms:
        made = time.perf_counter()
        term = simulated_term(students, weeks, cache)
        generated = time.perf_counter() - made
        size = (term / "events.jsonl").stat().st_size
        folder = work / f"backfill-{students}"
        run = run_backfill(term, folder, settings.partitions, work / f"backfill-{students}.log")
        shutil.rmtree(folder, ignore_errors=True)
        report = dict(line.split(":", 1) for line in run.report.splitlines() if ":" in line)
        results.note(
            f"backfill {students:,} x {weeks} weeks: {size / 2**30:.2f} GiB of canonical JSONL "
            f"({'made' if generated > 5 else 'cached'}, {generated:.0f} s); "
            f"{report.get('time', '').strip()}; alerts {report.get('alerts', '').strip()}; "
            f"load average {os.getloadavg()[0]:.2f} at its end"
        )
        runs.append((students, weeks, run))
    # The live pipeline's references in the same run (as the pipeline section measures them).
    single = session_events(reference_messages, 20_000)
    one = settings.model_copy(update={"topic_prefix": "benchfillone."})
    ensure_topics(one)
    publish_raw(one, single, 1, one.topic("activity"))
    naive = run_reference("naive", settings, one.topic("activity"), len(single), work)
    noop = run_reference("noop", settings, one.topic("activity"), len(single), work)
    for students, weeks, run in runs:
        rate = run.events / run.seconds
        goal = students >= 30_000 and weeks >= 12
        results.add(
            f"backfill, {students:,} students x {weeks} weeks ({run.events:,} events, simulated), end to end",
            f"{run.seconds:,.0f} s",
            f"{rate:,.0f} events/s ({rate / naive.steady:.1f}x naive Faust), "
            f"{run.days / run.seconds:.2f} days judged/s ({run.days} days), "
            f"peak memory {run.peak_rss / 2**30:.2f} GiB; CPU {run.cpu_seconds:,.0f} s, all processes",
            "< 600 s and < 4 GiB" if goal else "-",
            (run.seconds < GOAL_SECONDS and run.peak_rss < GOAL_BYTES) if goal else None,
        )
    results.add(
        f"naive Faust, same run as the backfill: one event per message, tumbling daily table "
        f"({len(single):,} messages)",
        f"{naive.steady:,.0f} events/s",
        f"reference; {naive.note()}",
    )
    results.add(
        f"no-op Faust agent, same run as the backfill ({len(single):,} messages)",
        f"{noop.steady:,.0f} messages/s",
        f"reference; {noop.note()}",
    )
