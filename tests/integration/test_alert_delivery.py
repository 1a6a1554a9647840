"""Alert delivery in the running service: alerts raised by the evaluator reach the entitled staff by
email (a real SMTP server) and webhook (a real HTTP server) within seconds, a failing webhook is
retried, nothing is delivered twice, and the personal-data endpoints apply the policy and audit."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.fixtures import upstream
from tests.integration.conftest import TERM_START, roster_record
from tests.integration.mailhelpers import parts, smtp_server, webhook_server

pytestmark = pytest.mark.integration


def test_alerts_are_delivered_once_to_the_entitled_staff(tmp_path: Path) -> None:
    with smtp_server() as (inbox, smtp_port), webhook_server(fail_first=1) as (hooks, url):
        run = EventTimeRun(
            Settings(),
            tmp_path / "lde",
            evaluate_from=TERM_START,
            partitions=2,
            extra_env={
                "LDE_SMTP_HOST": "127.0.0.1",
                "LDE_SMTP_PORT": str(smtp_port),
                "LDE_SMTP_SECURITY": "none",
                "LDE_ALERT_WEBHOOK_URLS": json.dumps([url]),
                "LDE_ALERT_DELIVERY_BACKOFF_SECONDS": "0.2",
            },
        )
        with run:
            answer = run.client.post("/v1/staff", upstream.path(upstream.STAFF).read_bytes())
            assert answer == {"staff": 7, "roles": 7}
            run.publish(
                roster=[
                    roster_record("900412771", given_name="Carys", family_name="Khan"),
                    roster_record(
                        "900398004",
                        given_name="Tomasz",
                        family_name="Rowe",
                        programme_code="BSC-PSY",
                        school="School of Psychology",
                        personal_tutor_id="S2210",
                    ),
                ]
            )
            day = date(2026, 10, 5)  # both silent since the start: no_engagement on 5 October
            started = time.monotonic()
            run.publish(through=day)
            assert run.wait_judged_through(day)
            assert wait_until(lambda: len(inbox.messages) >= 6 and len(hooks.received) >= 2, 30, 0.2)
            elapsed = time.monotonic() - started
            by_rcpt = {r[0]: m for r, m in inbox.messages}
            # Carys (BSC-CS, tutor S1042): tutor, programme leader, and engagement officer; the director of
            # the School of Computer Science and Mathematics is not hers (this roster says "School of
            # Computing"). Tomasz: his tutor, his programme leader and the engagement officer.
            assert sorted(r[0] for r, _ in inbox.messages) == [
                "h.park@example.ac.uk",
                "i.mercer@example.ac.uk",
                "j.marsh@example.ac.uk",
                "j.marsh@example.ac.uk",
                "o.hughes@example.ac.uk",
                "r.ellis@example.ac.uk",
            ]
            assert len([r for r, _ in inbox.messages if r == ["j.marsh@example.ac.uk"]]) == 2
            text, _, _ = parts(by_rcpt["h.park@example.ac.uk"])
            assert "Carys Khan (900412771)" in text and "Tomasz" not in text
            assert "Carys" not in parts(by_rcpt["o.hughes@example.ac.uk"])[0]
            assert elapsed < 30
            # the webhook answered 500 once: retried, then each alert arrived once
            assert sorted(h["student_id"] for h in hooks.received) == ["900398004", "900412771"]
            # a delivery is counted once its answer is back: the webhook may have the body first
            sent = 'lde_alert_deliveries_total{channel="webhook",outcome="sent"} 2.0'
            assert wait_until(lambda: sent in run.client.text("/metrics"), 10, 0.1)
            metrics = run.client.text("/metrics")
            assert 'lde_alert_deliveries_total{channel="webhook",outcome="retried"} 1.0' in metrics
            assert 'lde_alert_deliveries_total{channel="email",outcome="sent"} 6.0' in metrics

            # the personal-data endpoints apply the policy
            assert run.client.get("/v1/students/900412771", headers={"X-LDE-Staff": "S2210"})["status"] == 404
            assert run.client.get("/v1/students/900412771", headers={"X-LDE-Staff": "S1042"})["name"]
            assert run.client.get("/v1/students/900412771", headers={"X-LDE-Staff": "S0000"})["status"] == 403
            mine = run.client.get("/v1/alerts", headers={"X-LDE-Staff": "S2210"})
            assert {a["student_id"] for a in mine} == {"900398004"}
            # an alert consumed again is not delivered again
            count = len(inbox.messages)
        with run:  # restart: the broker is empty, ClickHouse and Redis keep their data
            time.sleep(3)
            assert len(inbox.messages) == count
    from sinks import clickhouse
    from sinks.clickhouse import ClickHouseStore

    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=tmp_path / "lde")))
    try:
        rows = store.audit_rows()
    finally:
        store.close()
    delivered = {(r[1], r[3]) for r in rows if r[2] == "alert_delivery"}
    assert ("S1042", "email") in delivered and ("S2210", "email") in delivered
    assert ("S2210", "http") not in {
        (r[1], r[3]) for r in rows if r[2] == "student_view"
    }  # refused: not read
    assert ("S1042", "http") in {(r[1], r[3]) for r in rows if r[2] == "student_view"}
