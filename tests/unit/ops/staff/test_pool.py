"""The page pool's back-pressure (issue 26): admitted, or shed at once with the reason and a
Retry-After; never queued beyond its bound."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from ops.http.surface import RouteKind
from ops.metrics import Metrics
from ops.staff.pool import (
    MAX_RETRY_AFTER,
    Budget,
    PagePool,
    Shed,
    ShedRate,
    ShedReason,
    admit,
    install_shedding,
    retry_hint,
    shed_response,
    sheds_for_judgement,
    spread_of,
)


def test_admitted_while_a_thread_or_a_queue_place_is_free() -> None:
    assert admit(in_flight=0, threads=2, queue=3, loop_lag=0.0, max_lag=0.5) is None
    assert admit(in_flight=4, threads=2, queue=3, loop_lag=0.0, max_lag=0.5) is None


def test_shed_when_every_thread_and_queue_place_is_taken() -> None:
    assert admit(in_flight=5, threads=2, queue=3, loop_lag=0.0, max_lag=0.5) is ShedReason.POOL_FULL
    assert admit(in_flight=2, threads=2, queue=0, loop_lag=0.0, max_lag=0.5) is ShedReason.POOL_FULL


def test_a_late_event_loop_sheds_first_whatever_the_pool() -> None:
    assert admit(in_flight=0, threads=2, queue=3, loop_lag=0.51, max_lag=0.5) is ShedReason.LOOP_LAG
    assert admit(in_flight=0, threads=2, queue=3, loop_lag=0.5, max_lag=0.5) is None


def pool(lag: float = 0.0, threads: int = 1, queue: int = 1, **more: Any) -> tuple[PagePool, Metrics]:
    """A pool with a Retry-After of 3 s and a lag bound of 0.5 s; `more` of PagePool's options."""
    metrics = Metrics()
    return PagePool(
        threads=threads, queue=queue, retry_after=3, max_lag=0.5, lag=lambda: lag, metrics=metrics, **more
    ), metrics


def shed_count(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("lde_web_shed_total", {"reason": reason})
    assert value is not None
    return value


def test_a_full_pool_sheds_the_next_request_and_counts_it() -> None:
    pages, metrics = pool(threads=1, queue=1)
    release = threading.Event()

    async def scenario() -> None:
        running = [asyncio.ensure_future(pages.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0)  # both admitted: one on the thread, one waiting
        assert pages.in_flight == 2
        with pytest.raises(Shed) as shed:
            await pages.run(lambda: None)
        assert (
            shed.value.reason is ShedReason.POOL_FULL and 3 <= shed.value.retry_after < 6
        )  # spread: up to twice
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        assert pages.in_flight == 0
        assert await pages.run(lambda: 7) == 7  # room again

    try:
        asyncio.run(scenario())
    finally:
        pages.close()
    assert shed_count(metrics, "pool_full") == 1
    assert shed_count(metrics, "loop_lag") == 0


def test_a_late_loop_sheds_and_a_failure_frees_its_place() -> None:
    late, metrics = pool(lag=2.0)
    on_time, _ = pool()

    def broken() -> None:
        raise ValueError("a bug")

    async def scenario() -> None:
        with pytest.raises(Shed):
            await late.run(lambda: None)
        with pytest.raises(ValueError):
            await on_time.run(broken)
        assert on_time.in_flight == 0

    try:
        asyncio.run(scenario())
    finally:
        late.close()
        on_time.close()
    assert shed_count(metrics, "loop_lag") == 1


@pytest.mark.parametrize(("path", "kind"), [("/app", "text/html"), ("/v1/alerts", "application/json")])
def test_a_shed_request_is_answered_503_with_retry_after(path: str, kind: str) -> None:
    answer = shed_response(make_mocked_request("GET", path), Shed(ShedReason.POOL_FULL, 4))
    assert isinstance(answer, web.Response)
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "4"
    assert answer.content_type == kind


@pytest.mark.parametrize(
    ("method", "path", "again"),
    [
        ("GET", "/app?status=new&page=2", "/app?status=new&amp;page=2"),
        ("POST", "/app/students/9/case", "/app"),
    ],
)
def test_a_shed_page_offers_to_try_again_where_it_is_safe(method: str, path: str, again: str) -> None:
    answer = shed_response(make_mocked_request(method, path), Shed(ShedReason.BUDGET, 3))
    assert isinstance(answer, web.Response) and answer.text is not None
    assert f'<a href="{again}">Try again</a>' in answer.text
    assert "refresh" not in answer.text  # never reloads by itself


def test_the_budget_admits_a_second_s_worth_then_its_rate() -> None:
    budget = Budget(rate=4)
    assert [budget.take(10.0) for _ in range(5)] == [True, True, True, True, False]  # a second's worth
    assert budget.take(10.1) is False  # 0.4 of a token back
    assert budget.take(10.25) is True  # one token back after a quarter of a second
    assert budget.take(100.0) and budget.tokens == 3.0  # never more than a second's worth saved


def test_no_budget_admits_everything() -> None:
    budget = Budget(rate=0)
    assert all(budget.take(1.0) for _ in range(1000))


def test_the_retry_after_grows_with_how_many_are_shed_is_spread_and_is_capped() -> None:
    assert retry_hint(2, shed_per_second=0, rate=12) == 2
    assert retry_hint(2, shed_per_second=96, rate=12) == 10  # a flood waits longer
    assert retry_hint(2, shed_per_second=96, rate=12, spread=0.5) == 15  # stretched, up to twice
    assert retry_hint(2, shed_per_second=10_000, rate=12) == MAX_RETRY_AFTER
    assert retry_hint(2, shed_per_second=100, rate=0) == 2  # no budget: the setting's own


def test_the_spread_covers_zero_to_one_evenly() -> None:
    spreads = [spread_of(n) for n in range(1, 101)]
    assert all(0.0 <= x < 1.0 for x in spreads)
    assert all(sum(1 for x in spreads if low <= x < low + 0.1) in range(8, 13) for low in (0.0, 0.3, 0.9))


def test_the_shed_rate_follows_a_steady_flood_and_outlives_a_quiet_gap() -> None:
    rate = ShedRate(seconds=10)
    for tick in range(600):  # 60 s of ten sheds a second
        rate.note(tick / 10)
    assert 9.0 < rate.per_second(60.0) < 10.5
    # clients told to come back in two seconds come back together: the quiet gap between bursts
    # does not make the flood look gone (the count of the last whole second did)
    burst = ShedRate(seconds=10)
    for start in (0.0, 3.0, 6.0, 9.0):
        for _ in range(100):
            burst.note(start)
    assert burst.per_second(11.5) > 20
    assert burst.per_second(120.0) < 0.01  # and a flood long gone is forgotten


def test_over_budget_is_shed_with_its_reason_and_a_retry_after_that_follows_the_flood() -> None:
    clock = [0.0]
    pages, metrics = pool(threads=2, queue=2, rate=1, now=lambda: clock[0])

    async def scenario() -> list[str | int]:
        outcomes: list[str | int] = []
        for at in (0.0, 0.0, 0.5, 1.0, 1.2, 1.4, 2.1):
            clock[0] = at
            try:
                outcomes.append(str(await pages.run(lambda: "page")))
            except Shed as shed:
                assert shed.reason is ShedReason.BUDGET
                outcomes.append(shed.retry_after)
        return outcomes

    # a second's worth (one), then one a second; Retry-After 3 plus the shed rate (0.1, 0.2, 0.3,
    # 0.4 a second as sheds add up), each stretched by its spread (0.62, 0.24, 0.85, 0.47)
    assert asyncio.run(scenario()) == ["page", 5, 3, "page", 6, 4, "page"]
    assert shed_count(metrics, "budget") == 4
    pages.close()


@pytest.mark.parametrize(
    ("method", "kind", "sheds"),
    [
        ("GET", RouteKind.STAFF, True),  # a page, a personal-data read
        ("HEAD", RouteKind.STAFF, True),
        ("POST", RouteKind.STAFF, False),  # a note or referral sent is not to be sent again
        ("GET", RouteKind.PUBLIC, False),  # probes, the stylesheet
        ("GET", RouteKind.METRICS, False),
        ("GET", None, False),  # no route: aiohttp's own 404
    ],
)
def test_only_reads_of_personal_data_wait_for_a_day_being_judged(
    method: str, kind: RouteKind | None, sheds: bool
) -> None:
    assert sheds_for_judgement(method, kind, judging=True) is sheds
    assert sheds_for_judgement(method, kind, judging=False) is False


def test_a_read_asked_while_a_day_is_judged_is_shed_before_the_guard() -> None:
    """Answered 503 with the base Retry-After before any later middleware (the guard) or handler
    runs; not counted as a flood; a form sent goes through."""
    judging = [True]
    pages, metrics = pool(judging=lambda: judging[0])
    reached: list[str] = []

    async def scenario() -> list[tuple[int, str | None]]:
        app = web.Application()

        async def page(request: web.Request) -> web.Response:
            reached.append(request.method)
            return web.Response(text="page")

        app.router.add_get("/app", page)
        app.router.add_post("/app", page)
        app.router.add_get("/health/live", page)
        install_shedding(app, pages, {"/app": RouteKind.STAFF, "/health/live": RouteKind.PUBLIC})
        async with TestClient(TestServer(app)) as client:
            answers = []
            for method, path in (("GET", "/app"), ("POST", "/app"), ("GET", "/health/live")):
                response = await client.request(method, path)
                answers.append((response.status, response.headers.get("Retry-After")))
            judging[0] = False
            response = await client.get("/app")
            answers.append((response.status, response.headers.get("Retry-After")))
            return answers

    try:
        assert asyncio.run(scenario()) == [(503, "3"), (200, None), (200, None), (200, None)]
    finally:
        pages.close()
    assert reached == ["POST", "GET", "GET"]
    assert shed_count(metrics, "judging") == 1
    assert pages.shed.per_second(pages.now()) == 0.0
