"""Running history through the real service on the event-time clock: `lde replay`, the demo and the
integration tests all use EventTimeRun, so they exercise the same agents and rules as live operation.

The publisher sends each local day's events and then a watermark at the end of that day; the service
judges a day once every partition's watermark has passed it. Replay therefore equals live: the same
events give the same alerts on the same dates however fast they arrive.
"""

from __future__ import annotations

import json
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from models.adapters import Parsed, read_lde_jsonl
from models.announcements import order_key
from models.events import ActivityEvent
from models.roster import Absence, RosterRecord
from models.timebuckets import day_end, local_day, zone
from ops.devtools.service_process import ServiceProcess
from ops.runtime.client import ServiceClient
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from sinks.errors import StackError
from sinks.kafka import Publisher


def free_port() -> int:
    """A TCP port nothing listens on right now (for private service instances)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EventTimeRun:
    """A private `lde up` (own data folder and ports) on the event-time clock.

    Its client is the operator (the data folder's token). With `trust_local_proxy` (the tests'
    default) the service also takes X-LDE-Staff from 127.0.0.1 as a trusted proxy's, so the harness
    can ask as any member of staff over HTTP; the demo and `lde replay` turn it off.
    """

    def __init__(
        self,
        base: Settings,
        data_dir: Path,
        evaluate_from: date,
        partitions: int | None = None,
        extra_env: dict[str, str] | None = None,
        private_ports: bool = True,
        trust_local_proxy: bool = True,
    ) -> None:
        kafka = f"127.0.0.1:{free_port()}" if private_ports else base.kafka_bootstrap
        web_port = free_port() if private_ports else base.web_port
        parts = partitions or base.partitions
        self.env = {
            "LDE_DATA_DIR": str(data_dir),
            "LDE_KAFKA_BOOTSTRAP": kafka,
            "LDE_WEB_PORT": str(web_port),
            "LDE_CLOCK": "event",
            "LDE_EVALUATE_FROM": evaluate_from.isoformat(),
            "LDE_EVALUATOR_INTERVAL_SECONDS": "0.3",
            "LDE_PARTITIONS": str(parts),
            "LDE_BATCH_MAX_SECONDS": "0.1",
            **({"LDE_TRUSTED_PROXIES": '["127.0.0.1/32"]'} if trust_local_proxy else {}),
            **(extra_env or {}),
        }
        self.settings = base.model_copy(
            update={
                "data_dir": data_dir,
                "kafka_bootstrap": kafka,
                "web_port": web_port,
                "partitions": parts,
                "clock": "event",
                "evaluate_from": evaluate_from,
            }
        )
        self.process = ServiceProcess(self.settings, self.env, data_dir / "service.log")
        self.client = ServiceClient(self.settings)
        self.tz = zone(self.settings.timezone)

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.process.start()

    def stop(self) -> int | None:
        return self.process.stop()

    def __enter__(self) -> EventTimeRun:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- feeding -------------------------------------------------------------------------------------
    def publish(
        self,
        roster: Sequence[RosterRecord] = (),
        events: Sequence[ActivityEvent] = (),
        absences: Sequence[Absence] = (),
        through: date | None = None,
    ) -> None:
        """Publish, then (optionally) promise that everything up to the end of `through` is published."""
        publisher = Publisher(self.settings)
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

    def publish_days(self, events_by_day: dict[date, list[ActivityEvent]], first: date, last: date) -> int:
        """Each day's events then its end-of-day watermark, from `first` to `last`. Returns events sent."""
        publisher = Publisher(self.settings)
        sent = 0
        try:
            day = first
            while day <= last:
                todays = events_by_day.get(day, [])
                publisher.send_events(todays, watermark=day_end(day, self.tz))
                sent += len(todays)
                day = date.fromordinal(day.toordinal() + 1)
        finally:
            publisher.close()
        return sent

    # -- observing -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict(self.client.get("/v1/status"))

    def wait_judged_through(self, day: date, timeout: float = 120) -> bool:
        """Wait until every partition is judged through `day` and every alert sent is stored."""

        def judged() -> bool:
            through = self.status().get("evaluated_through", {})
            return len(through) == self.settings.partitions and all(
                v >= day.isoformat() for v in through.values()
            )

        def stored() -> bool:
            status = self.status()
            return bool(status["alerts_recorded"] >= status["alerts_sent"])

        return wait_until(judged, timeout, 0.2) and wait_until(stored, timeout, 0.2)

    def wait_events_applied(self, count: int, timeout: float = 60) -> bool:
        return wait_until(lambda: self.status()["events_applied"] >= count, timeout, 0.2)

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.client.get("/v1/alerts"))

    def activity(self, student_id: str) -> dict[tuple[str, str], int]:
        rows = self.client.get(f"/v1/activity/{student_id}")
        return {(r["day"], r["source"]): r["events"] for r in rows}


@dataclass
class ReplayInput:
    roster: list[RosterRecord]
    absences: list[Absence]
    events_by_day: dict[date, list[ActivityEvent]]
    invalid_lines: int


def read_replay_input(
    roster: Iterable[RosterRecord], absences: Iterable[Absence], events: IO[str], timezone: str
) -> ReplayInput:
    """Group canonical events by local day (a term of history fits in memory; invalid lines counted)."""
    tz = zone(timezone)
    by_day: dict[date, list[ActivityEvent]] = defaultdict(list)
    invalid = 0
    for record in read_lde_jsonl(events):
        if isinstance(record, Parsed):
            by_day[local_day(record.event.occurred_at, tz)].append(record.event)
        else:
            invalid += 1
    for day_events in by_day.values():
        day_events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return ReplayInput(list(roster), list(absences), dict(by_day), invalid)


def replay(
    base: Settings, data: ReplayInput, through: date, work_dir: Path, first: date | None = None
) -> list[dict[str, Any]]:
    """Run the history through a private service and return its alerts (raised on or before `through`)."""
    start = first or (min(data.events_by_day) if data.events_by_day else through)
    with EventTimeRun(base, work_dir, evaluate_from=start, trust_local_proxy=False) as run:
        run.publish(roster=data.roster, absences=data.absences)
        run.publish_days(data.events_by_day, start, through)
        if not run.wait_judged_through(through):
            raise StackError(f"the replay did not finish judging {through}; see {work_dir / 'service.log'}")
        return [a for a in run.alerts() if a["raised_on"] <= through.isoformat()]


def write_alerts_jsonl(alerts: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """The alerts as JSON lines in the one total order (models.announcements.order_key): the same
    history always writes the same file."""
    count = 0
    ordered = sorted(
        alerts,
        key=lambda a: order_key(
            a["raised_on"], a["student_id"], a["rule"], a.get("about_rule"), a["alert_id"]
        ),
    )
    for alert in ordered:
        out.write(json.dumps(alert, sort_keys=True) + "\n")
        count += 1
    return count
