"""Staff browsing never slows alerting (issue 26), on the real service: page clients in another
process fetch the caseload as fast as answers come while the worker ingests and judges a term;
the stream sees no rebalance and re-reads nothing, every day is judged, and a saturated page pool
answers 503 with Retry-After instead of queueing."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest

from ops.devtools.bench.staff_load import OFFICER, Term, one_run
from ops.devtools.replay import EventTimeRun
from ops.devtools.simulator import simulate, staff_csv
from ops.http.proxy import STAFF_HEADER
from ops.runtime.embedded import wait_until
from ops.settings import Settings

pytestmark = pytest.mark.integration

#: One page thread and one place in the queue: a handful of clients saturate it.
SMALL_POOL = {"LDE_WEB_THREADS": "1", "LDE_WEB_QUEUE": "1"}


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
        assert all(retry == "2" for status, retry in answers if status == 503)
        metrics = run.client.text("/metrics")
        shed = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('lde_web_shed_total{reason="pool_full"}')
        )
        assert shed == statuses.count(503)
