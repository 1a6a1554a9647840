"""Canvas through the running service: live events in Canvas's format as a file (`lde ingest`), as
plain JSON and as signed JWTs posted one per request the way Canvas Data Services sends them (its
token in the URL), and a Canvas Data 2 web_logs file with its pseudonyms map, all with exact daily
counts in ClickHouse; bad signatures publish nothing; no title, URL, login or address is kept."""

from __future__ import annotations

import base64
import gzip
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.fixtures import canvas as samples
from tests.integration.conftest import TERM_START, assert_stored_nowhere
from tests.integration.test_collector import end_offsets
from tests.integration.test_ingest_samples import summary_lines
from tests.integration.test_restart_and_privacy import lde, search_topics

pytestmark = pytest.mark.integration

TOKEN = "canvas-secret-4"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "2026-10"


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey = KEY, kid: str = KID) -> str:
    """A JWT as Canvas signs one (RS256, always with a kid), by joserfc."""
    return jws.serialize_compact({"alg": "RS256", "kid": kid}, json.dumps(claims), RSAKey.import_key(key))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventTimeRun]:
    """One service for the module, with the canvas token and the public half of the test's key pair
    inline (as a site would paste Instructure's JWKS), accepting plain events too (both forms)."""
    public = RSAKey.import_key(KEY.public_key()).as_dict(private=False)
    jwks = {"keys": [{**public, "kid": KID, "alg": "RS256"}]}
    service = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("canvas") / "lde",
        evaluate_from=TERM_START,
        partitions=4,
        extra_env={
            "LDE_COLLECTOR_TOKENS": json.dumps({"canvas": TOKEN}),
            "LDE_CANVAS_JWKS": json.dumps(jwks),
            "LDE_CANVAS_ACCEPT_UNSIGNED": "true",
        },
    )
    service.start()
    try:
        yield service
    finally:
        assert service.stop() in (0, None)  # the privacy test stops it to read the stores


# -- helpers -------------------------------------------------------------------------------------------


def post(run: EventTimeRun, body: bytes, *, query: str = f"?access_token={TOKEN}", **headers: str) -> Any:
    """One POST to the live-events endpoint; (status, JSON body, headers)."""
    url = f"{run.settings.service_url}/v1/canvas/live-events{query}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def shifted(line: str, days: dict[str, str]) -> str:
    """A sample line with its event_time moved to other days (new events: new ids, other counts)."""
    for old, new in days.items():
        line = line.replace(f'"event_time":"{old}', f'"event_time":"{new}')
    return line


def sample_lines() -> list[str]:
    return samples.text("live-events.jsonl").splitlines()


def wait_counts(run: EventTimeRun, expected: dict[str, dict[str, int]]) -> None:
    """Until each student's vle counts on the given days are exactly these (from ClickHouse)."""
    seen: dict[str, dict[tuple[str, str], int]] = {}

    def exact() -> bool:
        for student in expected:
            seen[student] = run.activity(student)
        return all(
            seen[s].get((day, "vle")) == n for s, per_day in expected.items() for day, n in per_day.items()
        )

    assert wait_until(exact, 60, 0.2), seen


def duplicates(run: EventTimeRun) -> float:
    match = re.search(
        r'^lde_events_skipped_total\{reason="duplicate",source="vle"\} ([0-9.e+]+)$',
        run.client.text("/metrics"),
        re.MULTILINE,
    )
    return float(match[1]) if match else 0.0


def signatures(run: EventTimeRun, outcome: str) -> float:
    """lde_collector_signatures_total for the canvas endpoint and this outcome."""
    match = re.search(
        rf'^lde_collector_signatures_total\{{endpoint="canvas",outcome="{outcome}"\}} ([0-9.e+]+)$',
        run.client.text("/metrics"),
        re.MULTILINE,
    )
    assert match, outcome
    return float(match[1])


# -- live events ---------------------------------------------------------------------------------------


def test_a_live_events_file_through_lde_ingest(run: EventTimeRun) -> None:
    path = samples.HERE / samples.CANVAS_FILES["canvas-live-events"]
    result = lde(run, "ingest", "--format", "canvas-live-events", str(path))
    assert result.returncode == 0, result.stderr
    accepted, skipped, invalid = samples.EXPECTED["live-events.jsonl"]
    assert result.stdout.splitlines() == summary_lines(accepted - 1, 1, skipped, invalid)
    wait_counts(
        run,
        {
            "900412771": {"2026-10-20": 3},
            "900398004": {"2026-10-20": 2},
            "900555123": {"2026-10-21": 1},  # 23:30Z is 00:30 BST on the 21st
            "900201777": {"2026-10-21": 1},
        },
    )


def test_plain_live_events_one_per_request_with_the_token_in_the_url(run: EventTimeRun) -> None:
    private = samples.private_strings() | samples.logins()
    statuses = []
    for line in sample_lines():
        status, body, _ = post(
            run, shifted(line, {"2026-10-20": "2026-10-27", "2026-10-21": "2026-10-28"}).encode()
        )
        statuses.append(status)
        if status == 202:
            assert body["invalid"] == []
        assert not [s for s in private if s in json.dumps(body)]  # replies name positions and reasons only
    # Lines 14 (cut short) and 15 (no offset) are all a request holds: 400, nothing published.
    assert statuses == [202] * 13 + [400, 400]
    assert signatures(run, "unsigned") == 15
    assert TOKEN not in run.process.log_path.read_text(errors="replace")  # the URL's token is not logged
    wait_counts(
        run,
        {
            "900412771": {"2026-10-27": 3},  # the re-delivered wiki page view counts once
            "900398004": {"2026-10-27": 2},
            "900555123": {"2026-10-27": 1},  # after the clocks went back: 23:30Z is 23:30 GMT
            "900201777": {"2026-10-28": 1},
        },
    )


def test_signed_live_events_are_verified_and_counted(run: EventTimeRun) -> None:
    sent = 0
    for line in sample_lines()[:13]:
        event = json.loads(shifted(line, {"2026-10-20": "2026-11-03", "2026-10-21": "2026-11-04"}))
        token = sign(event)
        status, body, _ = post(run, token.encode(), query="", Authorization=f"Bearer {TOKEN}")
        assert status == 202, body
        sent += body["accepted"]
    assert sent == 8
    assert signatures(run, "valid") == 13
    wait_counts(
        run,
        {
            "900412771": {"2026-11-03": 3},
            "900398004": {"2026-11-03": 2},
            "900555123": {"2026-11-03": 1},
            "900201777": {"2026-11-04": 1},
        },
    )


def test_bad_signatures_are_refused_and_publish_nothing(run: EventTimeRun) -> None:
    event = json.loads(shifted(sample_lines()[0], {"2026-10-20": "2026-11-10"}))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header, payload, signature = sign(event).split(".")
    unsigned = b64url(json.dumps({"alg": "none", "kid": KID}).encode())
    cases = [
        (sign(event, other), 401, "bad signature"),
        (f"{header}.{payload[:-4]}AAAA.{signature}", 401, "bad signature"),
        (f"{unsigned}.{payload}.", 401, "algorithm"),
        (sign({**event, "exp": 1_000_000_000}), 401, "expired"),
        (sign(event, kid="1999-01"), 401, "key id"),
        ("bm90IGpzb24.eyJ9.c2ln", 400, "malformed"),
    ]
    before = end_offsets(run)
    for token, status, words in cases:
        got, body, headers = post(run, token.encode())
        assert got == status and words in body["error"], (token[:20], got, body)
        assert "eyJ" not in body["error"]
        if status == 401:
            assert headers["WWW-Authenticate"].startswith("Bearer")
    # Without the token, whatever the body: 401 before anything is read.
    assert post(run, json.dumps(event).encode(), query="")[0] == 401
    assert post(run, json.dumps(event).encode(), query="?access_token=wrong")[0] == 401
    assert end_offsets(run) == before
    assert run.activity("900412771").get(("2026-11-10", "vle")) is None
    for outcome in ("bad_signature", "algorithm", "expired", "unknown_key", "malformed"):
        assert signatures(run, outcome) >= 1, outcome


def test_the_openapi_document_describes_the_endpoint(run: EventTimeRun) -> None:
    with urllib.request.urlopen(f"{run.settings.service_url}/v1/openapi.json", timeout=30) as response:
        document = json.loads(response.read())
    operation = document["paths"]["/v1/canvas/live-events"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "application/jwt"}
    assert operation["security"] == [{"canvasToken": []}, {"canvasQueryToken": []}]
    scheme = document["components"]["securitySchemes"]["canvasQueryToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "query", "access_token")


# -- Canvas Data 2 -------------------------------------------------------------------------------------


def test_web_logs_through_lde_ingest_with_the_pseudonyms_map(run: EventTimeRun, tmp_path: Path) -> None:
    pseudonyms = str(samples.HERE / samples.PSEUDONYMS)
    jsonl = str(samples.HERE / "web-logs.jsonl")
    result = lde(run, "ingest", "--format", "canvas-web-logs", "--user-map", pseudonyms, jsonl)
    assert result.returncode == 0, result.stderr
    assert "user map: 4 Canvas users with a SIS id (6 rows)" in result.stderr
    accepted, skipped, invalid = samples.EXPECTED["web-logs.jsonl"]
    assert result.stdout.splitlines() == summary_lines(accepted, 0, skipped, invalid)
    expected = {
        "900412771": {"2026-10-22": 2},
        "900398004": {"2026-10-22": 1},
        "900555123": {"2026-10-23": 1},  # 23:45Z is 00:45 BST on the 23rd
        "900201777": {"2026-10-22": 1},
    }
    wait_counts(run, expected)

    # The same rows as DAP's gzip'd CSV snapshot, with the two-column map: the same ids, counted once.
    csv_gz = tmp_path / "part-00000.csv.gz"
    csv_gz.write_bytes(gzip.compress((samples.HERE / samples.WEB_LOGS_CSV).read_bytes()))
    before = duplicates(run)
    user_map = str(samples.HERE / samples.USER_MAP_CSV)
    result = lde(run, "ingest", "--format", "canvas-web-logs", "--user-map", user_map, str(csv_gz))
    assert result.returncode == 0, result.stderr
    accepted, skipped, invalid = samples.EXPECTED["web-logs.csv"]
    assert result.stdout.splitlines() == summary_lines(accepted, 0, skipped, invalid)
    assert wait_until(lambda: duplicates(run) >= before + accepted, 60, 0.2)
    wait_counts(run, expected)


def test_web_logs_need_a_user_map(run: EventTimeRun) -> None:
    jsonl = str(samples.HERE / "web-logs.jsonl")
    result = lde(run, "ingest", "--format", "canvas-web-logs", jsonl)
    assert result.returncode != 0 and "--user-map" in result.stderr
    other = lde(run, "ingest", "--format", "caliper", "--user-map", jsonl, jsonl)
    assert other.returncode != 0 and "canvas-web-logs only" in other.stderr
    not_a_map = lde(run, "ingest", "--format", "canvas-web-logs", "--user-map", jsonl, jsonl)
    assert not_a_map.returncode != 0 and "no Canvas user with a SIS id" in not_a_map.stderr


# -- privacy (last: it stops the service to read the stores) -------------------------------------------


def test_no_title_url_login_or_address_is_stored_anywhere(run: EventTimeRun) -> None:
    # No roster is loaded here, so the students' logins must not be anywhere either.
    found = samples.private_strings() | samples.logins() | {"canvas.example.ac.uk", "dynamic programming"}
    secrets = tuple(sorted(found))
    assert {"Week 7: dynamic programming notes", "198.51.100.23", "c.khan@students.example.ac.uk"} <= found
    assert search_topics(run, secrets) == []
    assert run.stop() == 0
    assert_stored_nowhere(run.settings, secrets)
