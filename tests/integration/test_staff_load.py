"""Staff browsing never slows alerting (issue 26), on the real service: page clients in another
process fetch the caseload as fast as answers come while the worker ingests and judges a term;
the stream sees no rebalance and re-reads nothing, every day is judged, and a saturated page pool
answers 503 with Retry-After instead of queueing."""

from __future__ import annotations

import http.client
import threading
from datetime import date
from pathlib import Path

import pytest

from ops.devtools.bench.staff_load import OFFICER, Term, one_run
from ops.devtools.replay import EventTimeRun
from ops.devtools.simulator import simulate, staff_csv
from ops.http.proxy import STAFF_HEADER
from ops.runtime.embedded import wait_until
from ops.settings import Settings

pytestmark = pytest.mark.integration

#: One page thread and one place in the queue: a handful of clients saturate it; reads shed while a
#: day is judged, as in production.
SMALL_POOL = {"LDE_WEB_THREADS": "1", "LDE_WEB_QUEUE": "1", "LDE_WEB_SHED_WHILE_JUDGING": "true"}


def test_pages_during_ingest_cause_no_rebalance_and_no_re_read(tmp_path: Path) -> None:
    term = Term.of(students=300, weeks=1)
    side, tally = one_run(tmp_path / "load", term, clients=6, timeout=240, env=SMALL_POOL)
    assert side.judged_seconds is not None, "the term was not judged under page load"
    assert side.rebalances == 0
    assert side.reconsumed == 0
    assert tally.statuses[200] > 0, tally.statuses
    assert set(tally.statuses) <= {200, 503}, tally.statuses
    assert tally.errors == 0 and tally.no_retry_after == 0


def test_a_saturated_page_pool_answers_503_with_retry_after(tmp_path: Path) -> None:
    sim = simulate(students=200, weeks=1, seed=3)
    run = EventTimeRun(Settings(), tmp_path / "svc", evaluate_from=sim.term_start, extra_env=SMALL_POOL)
    with run:
        run.publish(roster=[s.record for s in sim.students])
        run.client.post("/v1/staff", staff_csv(sim).encode())
        assert wait_until(lambda: run.status()["students"] >= 200, 60, 0.2)
        answers: list[tuple[int, str | None]] = []
        lock = threading.Lock()
        start = threading.Barrier(24)

        def one() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", run.settings.web_port, timeout=60)
            try:
                start.wait()
                connection.request("GET", "/app", headers={STAFF_HEADER: OFFICER})
                response = connection.getresponse()
                response.read()
                with lock:
                    answers.append((response.status, response.getheader("Retry-After")))
            finally:
                connection.close()

        threads = [threading.Thread(target=one) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in answers)
        assert len(answers) == 24
        assert 200 in statuses and 503 in statuses, statuses
        # the setting's 2 s, stretched by up to twice so that clients turned away together part
        assert all(retry in ("2", "3") for status, retry in answers if status == 503)
        metrics = run.client.text("/metrics")
        shed = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('lde_web_shed_total{reason="pool_full"}')
        )
        assert shed == statuses.count(503)


def children_of(pid: int) -> set[int]:
    """The processes `pid` started (Linux's /proc task children lists)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


#: The simulator's term start (ops.devtools.simulator.simulate's default), the services' first day.
TERM_START = date(2026, 9, 21)


def first_caseload(run: EventTimeRun, students: int, seed: int) -> tuple[str, set[int]]:
    """Load a simulated roster and staff into the running service, open the officer's caseload once,
    and return the page and the renderer processes the worker started for it."""
    sim = simulate(students=students, weeks=1, seed=seed, term_start=TERM_START)
    run.publish(roster=[s.record for s in sim.students])
    run.client.post("/v1/staff", staff_csv(sim).encode())
    assert wait_until(lambda: run.status()["students"] >= students, 60, 0.2)
    worker = run.process.process
    assert worker is not None
    before = children_of(worker.pid)
    connection = http.client.HTTPConnection("127.0.0.1", run.settings.web_port, timeout=60)
    connection.request("GET", "/app", headers={STAFF_HEADER: OFFICER})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 200, body
    renderers = {
        pid
        for pid in children_of(worker.pid) - before
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }
    assert len(renderers) == 1, renderers
    return body, renderers


def gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_the_caseload_is_made_in_a_renderer_that_stops_with_the_service_and_its_audit_is_stored(
    tmp_path: Path,
) -> None:
    """The renderer process (ops.staff.renderer) is the worker's child and ends with it; the page's
    audit row, spooled in Redis (sinks.audit_spool) with the timer set far off, is in ClickHouse
    once the service has stopped: drained at stop, not lost."""
    from sinks import clickhouse
    from sinks.clickhouse import ClickHouseStore

    data_dir = tmp_path / "svc"
    env = {"LDE_AUDIT_FLUSH_SECONDS": "60"}
    run = EventTimeRun(Settings(), data_dir, evaluate_from=TERM_START, extra_env=env)
    with run:
        body, renderers = first_caseload(run, 60, seed=5)
        assert "My students" in body
    assert wait_until(lambda: gone(renderers), 10, 0.2)
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        rows = store.query("SELECT action, via FROM access_audit WHERE staff_id = {s:String}", {"s": OFFICER})
    finally:
        store.close()
    assert ("caseload", "web") in rows


def test_a_renderer_ends_when_its_service_is_killed(tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves no renderer behind (it holds its own queue's ends, so it
    would wait for work forever): the renderer sees it is orphaned and exits."""
    run = EventTimeRun(Settings(), tmp_path / "svc", evaluate_from=TERM_START)
    with run:
        _, renderers = first_caseload(run, 40, seed=6)
        run.process.kill()
        assert wait_until(lambda: gone(renderers), 15, 0.2)
        run.start()  # on the same data folder, so that the clean stop ends the embedded stack too
