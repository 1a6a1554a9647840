"""Staff browsing against the stream (issue 26): N page clients, each fetching the caseload as fast as
answers come, while the worker ingests and judges a simulated term; both sides measured in one run.

`browse` is the clients (threads of plain HTTP, in a process of their own: `python -m
ops.devtools.bench.staff_load PORT STAFF CLIENTS SECONDS` prints its tally as JSON when stopped or
out of time); `bench_staff_load` alternates the configurations (0, 10, 50, 200 clients) on a fresh
service each, and writes the rows through the bench's markdown helper.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.devtools.bench.markdown import Results
from ops.http.proxy import STAFF_HEADER

#: The clients' scheduling priority (os.nice): the lowest, see `main`.
CLIENT_NICENESS = 19
#: The engagement officer of the simulated university (institution scope: the largest caseload).
OFFICER = "E001"


@dataclass
class Tally:
    """What the clients saw: latencies of answered pages (seconds), statuses, 503s without Retry-After."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # no answer at all (refused, reset, timed out)
    no_retry_after: int = 0
    seconds: float = 0.0
    #: The clients' own processor time (seconds, user + system): what they took from the machine
    cpu_seconds: float = 0.0

    def quantile(self, q: float) -> float | None:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def browse(port: int, staff: str, clients: int, seconds: float, stop: threading.Event) -> Tally:
    """`clients` loops fetching /app as `staff` until `stop` or `seconds`; returns the tally."""
    tally = Tally()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set() and time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                connection.request("GET", "/app", headers={STAFF_HEADER: staff})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    tally.errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                time.sleep(0.1)
                continue
            took = time.perf_counter() - began
            with lock:
                tally.statuses[response.status] += 1
                if response.status == 200:
                    tally.latencies.append(took)
            if response.status == 503:
                retry = response.getheader("Retry-After")
                if retry is None:
                    with lock:
                        tally.no_retry_after += 1
                stop.wait(float(retry or 1))  # a well-behaved client waits as asked
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.seconds = time.monotonic() - started
    return tally


def main(argv: list[str]) -> int:
    """The clients as a process of their own: stop on SIGTERM, print the tally as JSON. They stand
    for staff's browsers, which run on staff's own computers, not on the service's two cores: at the
    lowest priority they take only processor time the service leaves (their own waits for a core
    count in the latencies they measure, so the caseload's figures are, if anything, pessimistic)."""
    port, staff, clients, seconds = int(argv[0]), argv[1], int(argv[2]), float(argv[3])
    os.nice(CLIENT_NICENESS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tally = browse(port, staff, clients, seconds, stop)
    used = resource.getrusage(resource.RUSAGE_SELF)
    tally.cpu_seconds = used.ru_utime + used.ru_stime
    out = asdict(tally)
    out["statuses"] = {str(k): v for k, v in tally.statuses.items()}
    print(json.dumps(out), flush=True)
    return 0


class ClientProcess:
    """The page clients in a second process on loopback, bounded in count and time."""

    def __init__(self, port: int, clients: int, seconds: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.devtools.bench.staff_load",
                str(port),
                OFFICER,
                str(clients),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            env={**os.environ},
        )

    def stop(self) -> Tally:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=120)
        raw = json.loads(out)
        return Tally(
            latencies=raw["latencies"],
            statuses=Counter({int(k): v for k, v in raw["statuses"].items()}),
            errors=raw["errors"],
            no_retry_after=raw["no_retry_after"],
            seconds=raw["seconds"],
            cpu_seconds=raw["cpu_seconds"],
        )


def metric(text: str, name: str, label: str = "") -> float:
    """The sum of a metric's samples in a Prometheus exposition (those with `label`; 0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + " ") or line.startswith(name + "{")) and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def judged_days(status: dict[str, Any], figure: str = "seconds") -> list[float]:
    """Each day's judgement in seconds (`figure` "judge_seconds": the judgement proper; "cpu_seconds":
    its thread's CPU time), in the order
    judged, from a worker's /v1/status (its latest month of days, streams.evaluation_loop): every
    day, where the histogram's buckets give bounds."""
    return [float(j[figure]) for j in status.get("recent_judgements", [])]


@dataclass
class StreamSide:
    events: int
    ingest_seconds: float
    judged_seconds: float | None
    #: Each day's time from its figures read to its alerts on the broker (seconds), as the worker's
    #: status lists them; the judgement proper; and its thread's CPU time
    judge_days: list[float]
    judge_core: list[float]
    judge_cpu: list[float]
    rebalances: float
    reconsumed: float
    loop_lag_p99_bucket: str
    web_lag_p99_bucket: str
    shed: float
    #: Of those, reads shed while a day was judged (ops.staff.pool: alerts first)
    shed_judging: float = 0.0
    #: The worker's own view of the caseload's p95 (the smallest bucket holding 95%): the whole
    #: request, its wait for a page thread, its time in the renderer
    served_p95_bucket: str = "-"
    pool_wait_p95_bucket: str = "-"
    render_p95_bucket: str = "-"


def _bucket(text: str, name: str, label: str = "", q: float = 0.99) -> str:
    """The smallest bucket of histogram `name` (its series with `label`, if given) holding the share
    `q` of its samples."""
    count = metric(text, f"{name}_count", label)
    if not count:
        return "-"
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and label in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            if float(line.rsplit(" ", 1)[1]) >= q * count:
                return f"<= {bound} s"
    return "-"


def _lag_bucket(text: str, loop: str) -> str:
    """The smallest bucket holding 99% of a loop's lag samples (`loop`: stream, web)."""
    return _bucket(text, "lde_event_loop_lag_samples_seconds", f'loop="{loop}"')


@dataclass
class Term:
    """A simulated term, generated once and published in every run of its size."""

    sim: Any
    by_day: dict[Any, list[Any]]

    @classmethod
    def of(cls, students: int, weeks: int) -> Term:
        from ops.devtools.simulator import simulate

        sim = simulate(students=students, weeks=weeks, seed=7)
        return cls(sim, {d: sim.events_on(d) for d in sim.days()})


def one_run(
    work: Path, term: Term, clients: int, timeout: float, env: dict[str, str] | None = None
) -> tuple[StreamSide, Tally]:
    """A fresh service (with `env`); roster and staff in; clients start; the term is published and
    judged; the clients stop."""
    from ops.devtools.replay import EventTimeRun
    from ops.devtools.simulator import staff_csv
    from ops.runtime.embedded import wait_until
    from ops.settings import Settings

    sim, by_day = term.sim, term.by_day
    students = len(sim.students)
    days = sim.days()
    total = sum(len(v) for v in by_day.values())
    run = EventTimeRun(Settings(), work, evaluate_from=sim.term_start, partitions=8, extra_env=env)
    run.start()
    try:
        run.publish(roster=[s.record for s in sim.students])
        run.client.post("/v1/staff", staff_csv(sim).encode())
        wait_until(lambda: run.status()["students"] >= students, 120, 0.2)
        pages = ClientProcess(run.settings.web_port, clients, timeout) if clients else None
        began = time.monotonic()
        run.publish_days(by_day, days[0], days[-1])
        applied = wait_until(lambda: run.status()["events_applied"] >= total, timeout, 0.2)
        ingest = time.monotonic() - began
        judged = run.wait_judged_through(days[-1], max(1.0, timeout - ingest))
        judged_at = time.monotonic() - began if judged else None
        tally = pages.stop() if pages else Tally()
        text = run.client.text("/metrics")
        side = StreamSide(
            events=total if applied else int(run.status()["events_applied"]),
            ingest_seconds=ingest,
            judged_seconds=judged_at,
            judge_days=judged_days(status := run.status()),
            judge_core=judged_days(status, "judge_seconds"),
            judge_cpu=judged_days(status, "cpu_seconds"),
            rebalances=metric(text, "lde_consumer_rebalances_total"),
            reconsumed=metric(text, "lde_messages_reconsumed_total"),
            loop_lag_p99_bucket=_lag_bucket(text, "stream"),
            web_lag_p99_bucket=_lag_bucket(text, "web"),
            shed=metric(text, "lde_web_shed_total"),
            shed_judging=metric(text, "lde_web_shed_total", 'reason="judging"'),
            served_p95_bucket=_bucket(text, "lde_web_request_seconds", 'route="/app",status="2xx"', 0.95),
            pool_wait_p95_bucket=_bucket(text, "lde_web_pool_wait_seconds", "", 0.95),
            render_p95_bucket=_bucket(text, "lde_web_render_seconds", "", 0.95),
        )
        return side, tally
    finally:
        run.stop()


def bench_staff_load(
    results: Results,
    work: Path,
    terms: tuple[tuple[int, int], ...],
    client_counts: tuple[int, ...],
    rounds: int,
) -> None:
    """Alternated runs (every client count once per round, rounds repeated) per (students, weeks)."""
    results.note(
        f"staff load: load average {os.getloadavg()[0]:.2f} at the start (2 shared cores); page clients "
        "in a second process on loopback at the lowest scheduling priority, each fetching /app as the "
        "engagement officer as fast as answers come (a 503 waits its Retry-After)"
    )
    for students, weeks in terms:
        term = Term.of(students, weeks)
        seen: dict[int, list[tuple[StreamSide, Tally]]] = {c: [] for c in client_counts}
        for r in range(rounds):
            for clients in client_counts:
                folder = work / f"staff-{students}-{clients}-{r}"
                seen[clients].append(one_run(folder, term, clients, timeout=900))
        base = [s.events / s.ingest_seconds for s, _ in seen[client_counts[0]]]
        base_days = [d for s, _ in seen[client_counts[0]] for d in s.judge_days]
        for clients in client_counts:
            runs = seen[clients]
            rates = [s.events / s.ingest_seconds for s, _ in runs]
            judged = [s.judged_seconds for s, _ in runs]
            days = [d for s, _ in runs for d in s.judge_days]
            latencies = [t for _, tally in runs for t in tally.latencies]
            merged = Tally(latencies=latencies)
            ok = sum(t.statuses.get(200, 0) for _, t in runs)
            shed = sum(t.statuses.get(503, 0) for _, t in runs)
            other = sum(n for _, t in runs for code, n in t.statuses.items() if code not in (200, 503))
            errors = sum(t.errors + t.no_retry_after for _, t in runs)
            seconds = sum(t.seconds for _, t in runs) or 1.0
            p50, p95 = merged.quantile(0.5), merged.quantile(0.95)
            judging = sum(s.shed_judging for s, _ in runs)
            change = statistics.median(rates) / statistics.median(base) - 1
            results.add(
                f"staff load: stream, {clients} clients, {students:,} students, {runs[0][0].events:,} events",
                f"{statistics.median(rates):,.0f} events/s",
                f"runs {' / '.join(f'{x:,.0f}' for x in rates)} ({change:+.0%} against 0 clients); "
                f"term judged in {' / '.join('-' if j is None else f'{j:.1f} s' for j in judged)} "
                "from the first event",
                "fall <= 10% at 50" if clients == 50 else "-",
                change >= -0.10 if clients == 50 else None,
            )
            if days and base_days:
                slower = statistics.median(days) / statistics.median(base_days) - 1
                per_run = " / ".join(
                    f"{statistics.median(s.judge_days) * 1000:.0f}" for s, _ in runs if s.judge_days
                )
                cpu = statistics.median([c for s, _ in runs for c in s.judge_cpu] or [0.0])
                core = statistics.median([c for s, _ in runs for c in s.judge_core] or [0.0])
                results.add(
                    f"staff load: a day's judgement, {clients} clients, {students:,} students",
                    f"{statistics.median(days) * 1000:.0f} ms",
                    f"median of the {len(days)} days judged in its runs ({slower:+.0%} against 0 clients); "
                    f"each run's median {per_run} ms, from the figures read to the alerts on the broker; the "
                    f"judgement proper a median {core * 1000:.0f} ms, of which its thread ran "
                    f"{cpu * 1000:.0f} ms (the rest it waited for the interpreter lock or a core)",
                    "<= 10% slower at 50" if clients == 50 else "-",
                    slower <= 0.10 if clients == 50 else None,
                )
            if clients:
                results.add(
                    f"staff load: caseload under ingest, {clients} clients, {students:,} students",
                    "-" if p95 is None else f"p95 {p95 * 1000:.0f} ms",
                    f"p50 {'-' if p50 is None else f'{p50 * 1000:.0f} ms'}; {ok / seconds:.1f} pages/s "
                    f"(the clients used {sum(t.cpu_seconds for _, t in runs) / seconds:.2f} of a core, "
                    "at the lowest priority); "
                    f"503 with Retry-After {shed} ({judging:.0f} of them while a day was judged), other "
                    f"errors {other + errors}; rebalances "
                    f"{sum(s.rebalances for s, _ in runs):.0f}, messages re-read "
                    f"{sum(s.reconsumed for s, _ in runs):.0f}; "
                    f"loop lag p99: stream {runs[-1][0].loop_lag_p99_bucket}, web "
                    f"{runs[-1][0].web_lag_p99_bucket}; in the worker (last run) p95 "
                    f"{runs[-1][0].served_p95_bucket} answered, {runs[-1][0].pool_wait_p95_bucket} "
                    f"waiting for a page thread, {runs[-1][0].render_p95_bucket} in the renderer",
                    "p95 < 300 ms" if clients == 50 else "",
                    (p95 is not None and p95 < 0.3) if clients == 50 else None,
                )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
