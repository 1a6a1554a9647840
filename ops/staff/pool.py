"""The staff surface's own bounded thread pool, with back-pressure (issue 26).

Pages and personal-data reads never run on asyncio's default executor: the stream's writes and the
evaluator have pools of their own (streams.app), so a queue of pages cannot make an alert wait. The
pool takes at most `threads` requests at once and lets `queue` more wait; beyond that, or while the
web server's event loop is late (ops.runtime.web_thread: a page answered that late is better retried), a
request is shed at once: `Shed`, answered 503 with Retry-After by the middleware `install_shedding`,
never queued for seconds. `admit` is the decision, pure. While the worker judges a day (streams.
alerts_first) a read of personal data is shed too, before the guard looks at its session, told to
come back in `retry_after`: a judgement takes a fraction of a second once a day, and the requests it
would share the interpreter with are what slows it most (BENCHMARKS.md, staff load). A form sent (a
note, a referral), a probe or an asset is never shed for that (`sheds_for_judgement`, pure).
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from ops.http.surface import Request, RouteKind, as_html, as_json
from ops.metrics import Metrics

_Result = TypeVar("_Result")

#: What a shed staff request says (no personal data; the same for every page).
BUSY_MESSAGE = "LDE is busy keeping alerts flowing; please try again in a moment."


class ShedReason(StrEnum):
    """Why a staff request was not admitted (lde_web_shed_total's `reason`)."""

    POOL_FULL = "pool_full"
    LOOP_LAG = "loop_lag"
    BUDGET = "budget"
    JUDGING = "judging"


class Shed(Exception):
    """A staff request not admitted to the page pool: answer 503 with Retry-After (back-pressure,
    one of the three kinds of failure: the caller waits, then retries)."""

    def __init__(self, reason: ShedReason, retry_after: int) -> None:
        super().__init__(f"shed: {reason.value}")
        self.reason = reason
        self.retry_after = retry_after


def admit(in_flight: int, threads: int, queue: int, loop_lag: float, max_lag: float) -> ShedReason | None:
    """None to admit one more request; else why it is shed. A late event loop sheds first (every page
    admitted would be later still), then a full pool (every thread busy and
    `queue` requests already waiting)."""
    if loop_lag > max_lag:
        return ShedReason.LOOP_LAG
    if in_flight >= threads + queue:
        return ShedReason.POOL_FULL
    return None


def sheds_for_judgement(method: str, kind: RouteKind | None, judging: bool) -> bool:
    """Whether a request waits for a day being judged: a read (GET, HEAD) of personal data (a staff
    route) while it is judged. A form sent is not to be sent again for it; probes and assets are no
    page work."""
    return judging and kind is RouteKind.STAFF and method in ("GET", "HEAD")


#: The longest Retry-After a shed request is given (seconds), however loaded the service.
MAX_RETRY_AFTER = 60


def retry_hint(base: int, shed_per_second: float, rate: float, spread: float = 0.0) -> int:
    """The Retry-After of a shed request: `base`, plus a second for every `rate` requests shed a
    second lately, so the more clients are turned away, the longer each waits and the fewer come
    back at once (a flood costs the stream too: every 503 is a request answered); then stretched by
    `spread` (0 to 1: up to twice as long) so that clients turned away together do not all come back
    together. Pure."""
    hint = base + shed_per_second / rate if rate > 0 else float(base)
    return min(MAX_RETRY_AFTER, int(hint * (1.0 + spread)))


def spread_of(n: int) -> float:
    """The `n`th of a sequence spread evenly over [0, 1) (the golden ratio's): a shed request's
    stretch of its Retry-After, with no random source to seed or test around."""
    return (n * 0.6180339887498949) % 1.0


class ShedRate:
    """Requests shed a second, lately: a count that decays with time constant `seconds`. A count of
    the last whole second was tried and failed: clients told to come back in two seconds came back
    together after a quiet second, found the count reset and were told two seconds again."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self.level = 0.0
        self.at = 0.0

    def _decayed(self, now: float) -> float:
        return self.level * math.exp(-max(0.0, now - self.at) / self.seconds)

    def note(self, now: float) -> None:
        """One more shed at `now`."""
        self.level, self.at = self._decayed(now) + 1.0, now

    def per_second(self, now: float) -> float:
        """About how many were shed a second over the last `seconds`."""
        return self._decayed(now) / self.seconds


class Budget:
    """How many requests a second may be admitted, on average (a token bucket holding a second's
    worth: a bucket of two, tried, wasted the budget when clients came back together after their
    Retry-After): in the embedded worker the staff surface shares one interpreter with the stream,
    and every page admitted costs the stream its share of it (issue 26; `rate` 0: no budget). `take`
    is the decision, given the time: pure."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at: float | None = None

    def take(self, now: float) -> bool:
        """True, and one token spent, when a request may be admitted at `now` (seconds)."""
        if self.rate <= 0:
            return True
        if self.at is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PagePool:
    """Runs the staff surface's blocking work (queries, view building, templates) on threads of its
    own; `run` raises Shed instead of queueing beyond the bound or the budget (`rate` a second).
    `lag` is the web server's event loop's latest lag in seconds (ops.runtime.loop_lag)."""

    def __init__(
        self,
        *,
        threads: int,
        queue: int,
        retry_after: int,
        max_lag: float,
        lag: Callable[[], float],
        metrics: Metrics,
        rate: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        judging: Callable[[], bool] = lambda: False,
    ) -> None:
        self.threads = threads
        self.queue = queue
        self.retry_after = retry_after
        self.max_lag = max_lag
        self.lag = lag
        self.metrics = metrics
        self.budget = Budget(rate)
        self.now = now
        #: Whether the worker is judging a day (streams.alerts_first): reads wait for it, shed.
        self.judging = judging
        self.in_flight = 0
        self.shed = ShedRate()
        self._sheds = 0
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lde-pages")

    def check(self) -> None:
        """Raise Shed when one more request would not be admitted now."""
        now = self.now()
        reason = admit(self.in_flight, self.threads, self.queue, self.lag(), self.max_lag)
        if reason is None and not self.budget.take(now):
            reason = ShedReason.BUDGET
        if reason is not None:
            self.metrics.web_shed.labels(reason=reason.value).inc()
            self.shed.note(now)
            self._sheds += 1
            hint = retry_hint(
                self.retry_after, self.shed.per_second(now), self.budget.rate, spread_of(self._sheds)
            )
            raise Shed(reason, hint)

    def check_judgement(self, method: str, kind: RouteKind | None) -> None:
        """Raise Shed when a day is being judged and this request is a read of personal data (not
        counted in the shed rate: a judgement is no flood, its Retry-After stays the base)."""
        if sheds_for_judgement(method, kind, self.judging()):
            self.metrics.web_shed.labels(reason=ShedReason.JUDGING.value).inc()
            raise Shed(ShedReason.JUDGING, self.retry_after)

    async def run(self, call: Callable[..., _Result], *args: Any) -> _Result:
        """`call(*args)` on a page thread, once admitted (raises Shed otherwise)."""
        self.check()
        self.in_flight += 1
        self.metrics.web_in_flight.set(self.in_flight)
        queued = time.perf_counter()

        def timed() -> _Result:
            self.metrics.web_pool_wait_seconds.observe(time.perf_counter() - queued)
            return call(*args)

        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, timed)
        finally:
            self.in_flight -= 1
            self.metrics.web_in_flight.set(self.in_flight)

    def close(self) -> None:
        """Stop taking work; running pages finish on their threads, waiting ones are dropped."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def shed_response(request: Request, error: Shed) -> web.Response:
    """503 with Retry-After: a page for the web app's addresses, JSON for the API."""
    headers = {"Retry-After": str(error.retry_after), "Cache-Control": "no-store"}
    if request.path.startswith("/app"):
        # the page itself again (a GET is safe to repeat; a form sent is the caseload's to redo),
        # never an automatic refresh (WCAG 2.2.1: the reader decides when)
        again = html.escape(request.path_qs if request.method == "GET" else "/app")
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Busy: LDE</title>'
            f'</head><body><main><h1>Busy</h1><p>{BUSY_MESSAGE}</p><p><a href="{again}">Try again</a></p>'
            "</main></body></html>"
        )
        return as_html(body, status=503, headers=headers)
    return as_json(
        {"error": BUSY_MESSAGE, "status": 503, "retry_after": error.retry_after}, status=503, headers=headers
    )


def install_shedding(web_app: web.Application, pages: PagePool, kinds: Mapping[str, RouteKind]) -> None:
    """Answer every Shed raised under a handler with 503 and Retry-After (outermost middleware, so
    the guard's own checks are shed too); a read of personal data while a day is judged (`pages`'
    judging, the route's kind in `kinds`, the guard's table) is shed here, before the guard's work."""

    @web.middleware
    async def shedding(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            resource = request.match_info.route.resource
            pages.check_judgement(request.method, kinds.get(resource.canonical) if resource else None)
            return await handler(request)
        except Shed as error:
            return shed_response(request, error)

    web_app.middlewares.insert(0, shedding)


def install_timing(web_app: web.Application, metrics: Metrics) -> None:
    """Time every request from its arrival to its answer (outermost middleware: the guard, the
    shedding and the page's wait included), by route pattern and status class."""

    @web.middleware
    async def timing(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics.web_request_seconds.labels(route=route, status=f"{status // 100}xx").observe(
                time.perf_counter() - began
            )

    web_app.middlewares.insert(0, timing)
