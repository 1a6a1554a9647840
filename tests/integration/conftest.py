"""Integration harness: the real service (`lde up`) on the embedded engines, started by the suite.

Each harness gets its own data directory and free ports, runs on the event-time clock, and is driven
through Kafka (kafka-python) and the service's HTTP API, as an operator would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from models.events import ActivityEvent
from models.roster import Absence, RosterRecord
from models.timebuckets import day_end, zone
from ops.api import ServiceClient
from ops.embedded import wait_until
from ops.publish import Publisher
from ops.service_process import ServiceProcess
from ops.settings import Settings

TERM_START = date(2026, 9, 21)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Harness:
    """One service process and the means to feed and observe it."""

    def __init__(self, data_dir: Path, evaluate_from: date = TERM_START, partitions: int = 4) -> None:
        self.env = {
            "LDE_DATA_DIR": str(data_dir),
            "LDE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "LDE_WEB_PORT": str(free_port()),
            "LDE_CLOCK": "event",
            "LDE_EVALUATE_FROM": evaluate_from.isoformat(),
            "LDE_EVALUATOR_INTERVAL_SECONDS": "0.3",
            "LDE_PARTITIONS": str(partitions),
            "LDE_BATCH_MAX_SECONDS": "0.1",
        }
        self.settings = Settings(
            data_dir=data_dir,
            kafka_bootstrap=self.env["LDE_KAFKA_BOOTSTRAP"],
            web_port=int(self.env["LDE_WEB_PORT"]),
            partitions=partitions,
            clock="event",
        )
        self.process = ServiceProcess(self.settings, self.env, data_dir / "service.log")
        self.client = ServiceClient(self.settings)
        self.tz = zone(self.settings.timezone)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> int | None:
        return self.process.stop()

    def publisher(self) -> Publisher:
        return Publisher(self.settings)

    def publish(
        self,
        roster: list[RosterRecord] = (),  # type: ignore[assignment]
        events: list[ActivityEvent] = (),  # type: ignore[assignment]
        absences: list[Absence] = (),  # type: ignore[assignment]
        through: date | None = None,
    ) -> None:
        publisher = self.publisher()
        try:
            if roster:
                publisher.send_roster(roster)
            if absences:
                publisher.send_absences(absences)
            if events:
                publisher.send_events(events)
            if through is not None:
                publisher.send_watermark(day_end(through, self.tz))
        finally:
            publisher.close()

    def status(self) -> dict[str, Any]:
        return self.client.get("/v1/status")

    def wait_evaluated_through(self, day: date, timeout: float = 60) -> None:
        def done() -> bool:
            through = self.status().get("evaluated_through", {})
            return len(through) == self.settings.partitions and all(
                v >= day.isoformat() for v in through.values()
            )

        assert wait_until(done, timeout, 0.2), f"evaluator did not reach {day}: {self.status()}"
        # Alerts of judged days are sent before progress is saved; wait until they are all stored.
        assert wait_until(
            lambda: self.status()["alerts_recorded"] >= self.status()["alerts_sent"], timeout, 0.2
        ), self.status()

    def wait_events_applied(self, count: int, timeout: float = 60) -> None:
        assert wait_until(lambda: self.status()["events_applied"] >= count, timeout, 0.2), self.status()

    def alerts(self) -> list[dict[str, Any]]:
        return self.client.get("/v1/alerts")

    def activity(self, student_id: str) -> dict[tuple[str, str], int]:
        rows = self.client.get(f"/v1/activity/{student_id}")
        return {(r["day"], r["source"]): r["events"] for r in rows}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "lde")
    h.start()
    try:
        yield h
    finally:
        h.stop()


def roster_record(sid: str, **changes: Any) -> RosterRecord:
    base = {
        "student_id": sid,
        "given_name": "Test",
        "family_name": sid,
        "programme_code": "BSC-CS",
        "school": "School of Computing",
        "year_of_study": 1,
        "mode": "FT",
        "status": "active",
        "start_date": TERM_START,
        "personal_tutor_id": "S1042",
    }
    return RosterRecord.model_validate({**base, **changes})


def activity(
    eid: str, sid: str, when: datetime | str, source: str = "vle", **attributes: Any
) -> ActivityEvent:
    return ActivityEvent.model_validate(
        {
            "event_id": eid,
            "student_id": sid,
            "source": source,
            "occurred_at": when,
            "attributes": attributes or None,
        }
    )
