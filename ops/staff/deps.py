"""What the staff surface's handlers are given: small typed dependency objects, built by the runtime
wiring (ops.runtime.wiring) and handed to each route by the route table (ops.staff.routes). Nothing
in ops.staff imports the runtime, and no handler reaches into the service for what it uses.

- `Probes`: the health, status and metrics routes (the stream app's own answers).
- `StaffDeps`: the personal-data API and the web app's pages: the store, the audited-read gateway,
  the staff directory, the clock, the sessions (CSRF of the web app's forms), settings and metrics,
  the page pool their blocking work runs on (ops.staff.pool: bounded, sheds with 503) and the
  precomputed page views (ops.staff.page_views).
- `AdminDeps`: the administrators' actions: loads, jobs, the privacy check.
- the sign-in routes take `ops.staff.auth.signin.SignIn`, the API-token routes
  `ops.staff.auth.api_tokens.ApiTokens`: each is already what its routes need.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import redis
from prometheus_client import CollectorRegistry

from models.access import StaffDirectory
from models.clock import Clock
from ops.jobs.reports.audited import AuditedReads
from ops.jobs.scheduled import JobRunner, clock_now, clock_today
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.api_tokens import ApiTokens
from ops.staff.auth.sessions import SessionStore
from ops.staff.auth.signin import SignIn
from ops.staff.page_views import PageViews
from ops.staff.pool import PagePool
from ops.staff.renderer import Renderer
from sinks.clickhouse import ClickHouseStore

log = logging.getLogger("lde.service")


class StaffDirectoryCache:
    """The staff directory as last loaded, refreshed from ClickHouse every minute so that every worker
    of a production deployment follows a load made through any of them."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.directory = StaffDirectory()
        self.refresh()

    def __call__(self) -> StaffDirectory:
        """The directory now (the getter the guard, sign-in and delivery are given)."""
        return self.directory

    def refresh(self) -> None:
        loaded = StaffDirectory.from_rows(self.store.staff_rows())
        if loaded != self.directory:  # the same object while nothing changed: the renderer keeps it
            self.directory = loaded

    def replace(self, directory: StaffDirectory) -> None:
        """A load this worker just made (the others follow within a minute)."""
        self.directory = directory

    async def tick(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
        except Exception as error:  # keep the last good directory; ClickHouse may be restarting
            log.error("staff_directory_refresh_failed error=%r", error)


@dataclass(frozen=True, slots=True)
class Probes:
    """What the probes answer: the stream app's readiness and status, and the metrics registry."""

    ready: Callable[[], tuple[bool, dict[str, Any]]]
    status: Callable[[], dict[str, Any]]
    registry: CollectorRegistry


@dataclass(frozen=True, slots=True)
class StaffDeps:
    """What the personal-data routes and the web app's pages use."""

    settings: Settings
    metrics: Metrics
    store: ClickHouseStore
    reads: AuditedReads
    directory: StaffDirectoryCache
    clock: Clock
    tz: ZoneInfo
    sessions: SessionStore
    pages: PagePool
    views: PageViews
    renderer: Renderer

    def today(self) -> date:
        """Today in the institution's time zone on the service's clock."""
        return clock_today(self.clock, self.tz)

    def now(self) -> datetime:
        """Now on the service's clock (the wall clock while an event clock has no time yet): what
        case actions are stamped with, so they sort with the alerts, which carry the same clock."""
        return clock_now(self.clock)


@dataclass(frozen=True, slots=True)
class AdminDeps:
    """What the administrators' routes use: the staff load, the jobs, and where to look for a student
    in the privacy check (ClickHouse, Redis, and the stream's tables by name)."""

    store: ClickHouseStore
    directory: StaffDirectoryCache
    jobs: JobRunner
    redis: redis.Redis | None
    tables: Mapping[str, Container[str]]


class Uses(StrEnum):
    """Which dependency object a route's handler takes (a field of RouteDeps)."""

    PROBES = "probes"
    STAFF = "staff"
    ADMIN = "admin"
    SIGNIN = "signin"
    TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class RouteDeps:
    """Every route's dependencies, one object per kind of handler."""

    probes: Probes
    staff: StaffDeps
    admin: AdminDeps
    signin: SignIn
    tokens: ApiTokens

    def of(self, uses: Uses) -> object:
        return getattr(self, uses.value)
