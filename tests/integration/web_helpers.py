"""The staff web app's test harness: the report data set (tests.integration.report_data) in a real
chDB, served by a real `lde up`, and a plain HTTP client that does not follow redirects."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from ops.devtools.replay import EventTimeRun
from ops.http.proxy import STAFF_HEADER
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from tests.integration import report_data

#: No identity means no data (issue 15's rule, already on here): the operator default is off.
ENV = {"LDE_OPERATOR_ACCESS": "false"}


def seed_data_dir(data_dir: Path) -> dict[str, str]:
    """The report data set in a fresh data folder; returns student id -> name."""
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        clickhouse.migrate(store.client)
        students = report_data.seed(store)
    finally:
        store.close()
    return {s.student_id: f"{s.given_name} {s.family_name}" for s in students}


@contextmanager
def service_on(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[EventTimeRun]:
    """`lde up` on an existing data folder (again and again: a restart keeps the data), with `env`
    over the suite's settings."""
    run = EventTimeRun(Settings(), data_dir, evaluate_from=date(2027, 1, 4), extra_env={**ENV, **(env or {})})
    run.start()
    try:
        yield run
    finally:
        run.stop()


@contextmanager
def store_while_stopped(run: EventTimeRun, data_dir: Path) -> Iterator[ClickHouseStore]:
    """The service's store, opened with the service stopped (chDB has one owner) to read what it
    stored or write as the stream would; the service is started again afterwards, whatever happens."""
    run.stop()
    try:
        store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
        try:
            yield store
        finally:
            store.close()
    finally:
        run.start()


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str

    def forms(self, kind: str) -> list[dict[str, str]]:
        """The hidden fields of every triage form of one kind on the page, with its action."""
        out = []
        for form in re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', self.body, re.S):
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[1]))
            if fields.get("kind") == kind:
                out.append({"_action": form[0], **fields})
        return out


def fetch(run: EventTimeRun, path: str, staff: str | None = None, form: dict[str, str] | None = None) -> Page:
    """GET (or POST a form) as a member of staff (the X-LDE-Staff header until issue 15's sign-in). A
    GET the service is busy for (503 with Retry-After: shed, or a day being judged) is asked again as
    a person would, after the wait it gives, twice at most; a form is sent once."""
    for _ in range(2):
        page = fetch_once(run, path, staff, form)
        if form is not None or page.status != 503 or "Retry-After" not in page.headers:
            return page
        time.sleep(int(page.headers["Retry-After"]))
    return fetch_once(run, path, staff, form)


def fetch_once(run: EventTimeRun, path: str, staff: str | None, form: dict[str, str] | None) -> Page:
    connection = http.client.HTTPConnection("127.0.0.1", run.settings.web_port, timeout=30)
    headers = {STAFF_HEADER: staff} if staff else {}
    try:
        if form is None:
            connection.request("GET", path, headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            connection.request("POST", path, body=urlencode(form), headers=headers)
        response = connection.getresponse()
        return Page(response.status, dict(response.getheaders()), response.read().decode())
    finally:
        connection.close()
