"""Issue 25.3 end to end: Caliper envelopes shaped as the IMS Caliper 1.1 and 1.2 specifications'
examples (plain Person actors, no Canvas extension) posted to the running service's /v1/caliper,
configured as README says (Person id patterns and a user map file): answered 200 (what IMS's sensors
count as success) with the collector's counts, and counted per student and day; Canvas's extension
still counts beside them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.fixtures import caliper as fixtures
from tests.integration.conftest import TERM_START

pytestmark = pytest.mark.integration

TOKEN = "caliper-sensor-secret-0123456789"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventTimeRun]:
    service = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("caliper") / "lde",
        evaluate_from=TERM_START,
        partitions=2,
        extra_env={
            "LDE_COLLECTOR_TOKENS": json.dumps({"caliper": TOKEN}),
            "LDE_CALIPER_PERSON_PATTERNS": json.dumps(fixtures.PATTERNS),
            "LDE_CALIPER_USER_MAP": str(fixtures.path(fixtures.PERSON_MAP)),
        },
    )
    service.start()
    try:
        yield service
    finally:
        assert service.stop() == 0


def post(run: EventTimeRun, body: bytes) -> tuple[int, dict[str, Any], str]:
    """POST as a Caliper sensor does: JSON with the endpoint's bearer token."""
    request = urllib.request.Request(f"{run.settings.service_url}/v1/caliper", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            return response.status, json.loads(text), text
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, json.loads(text), text


def wait_student(run: EventTimeRun, student: str, days: dict[str, int]) -> None:
    """Until the student's vle counts per local day include `days`."""
    want = {(day, "vle"): count for day, count in days.items()}
    seen: dict[tuple[str, str], int] = {}

    def applied() -> bool:
        seen.update(run.activity(student))
        return all(seen.get(key) == count for key, count in want.items())

    assert wait_until(applied, 60, 0.2), (student, seen)


@pytest.mark.parametrize("name", [fixtures.V1P1, fixtures.V1P2, fixtures.CANVAS])
def test_an_envelope_is_answered_200_with_its_counts_and_counted(run: EventTimeRun, name: str) -> None:
    status, body, text = post(run, fixtures.path(name).read_bytes())
    assert status == 200, text  # IMS's caliper-python counts only 200 and 201 as sent
    accepted, duplicates, skipped = fixtures.EXPECTED[name]
    assert body["request_id"]
    assert (body["accepted"], body["duplicates"], body["invalid"]) == (accepted, duplicates, [])
    assert {s["position"]: s["reason"] for s in body["skipped"]} == skipped
    assert not [p for p in fixtures.PRIVATE if p in text]
    for student, days in fixtures.DAYS[name].items():
        wait_student(run, student, days)


def test_refusals_keep_their_statuses(run: EventTimeRun) -> None:
    assert post(run, b"this is not JSON {")[0] == 400
    request = urllib.request.Request(f"{run.settings.service_url}/v1/caliper", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 401


def test_the_openapi_document_says_200_for_caliper(run: EventTimeRun) -> None:
    with urllib.request.urlopen(f"{run.settings.service_url}/v1/openapi.json", timeout=60) as response:
        document = json.loads(response.read())
    assert "200" in document["paths"]["/v1/caliper"]["post"]["responses"]
    assert "202" not in document["paths"]["/v1/caliper"]["post"]["responses"]
    assert "202" in document["paths"]["/v1/events"]["post"]["responses"]
