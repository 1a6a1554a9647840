"""The alert outbox's rules: what a delivery's record becomes after each try, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.outbox import (
    Attempt,
    DeliveryPolicy,
    OutboxEntry,
    OutboxStatus,
    OutboxSummary,
    after_attempt,
    already_sent,
    undelivered_notice,
)

T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
POLICY = DeliveryPolicy(first=timedelta(seconds=1), cap=timedelta(minutes=10), deadline=timedelta(hours=24))


def entry(attempts: int = 0, version: int = 0) -> OutboxEntry:
    return OutboxEntry("a1", "900000001", "email", "S1042", T0, attempts=attempts, version=version)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (1, timedelta(seconds=1)),
        (2, timedelta(seconds=2)),
        (5, timedelta(seconds=16)),
        (10, timedelta(seconds=512)),
        (11, timedelta(minutes=10)),  # capped
        (1000, timedelta(minutes=10)),  # no overflow however many tries
    ],
)
def test_back_off_doubles_up_to_the_cap(attempts: int, delay: timedelta) -> None:
    assert POLICY.delay(attempts) == delay


@pytest.mark.parametrize(
    ("attempts", "attempt", "at", "status", "next_at"),
    [
        # sent: done, whenever it happens
        (0, Attempt.SENT, T0, OutboxStatus.SENT, None),
        (40, Attempt.SENT, T0 + timedelta(hours=23), OutboxStatus.SENT, None),
        # refused for good (an address refused, a 4xx): dead at once
        (0, Attempt.REFUSED, T0, OutboxStatus.DEAD, None),
        # failed: tried again after the back-off
        (0, Attempt.FAILED, T0, OutboxStatus.PENDING, T0 + timedelta(seconds=1)),
        (3, Attempt.FAILED, T0 + timedelta(seconds=30), OutboxStatus.PENDING, T0 + timedelta(seconds=38)),
        # an SMTP server down for hours: still pending, tried every 10 minutes
        (30, Attempt.FAILED, T0 + 5 * H, OutboxStatus.PENDING, T0 + 5 * H + 10 * M),
        # the next try would fall just past the deadline: dead
        (30, Attempt.FAILED, T0 + 23 * H + 55 * M, OutboxStatus.DEAD, None),
        # the next try falls exactly on the deadline: still tried
        (30, Attempt.FAILED, T0 + 23 * H + 50 * M, OutboxStatus.PENDING, T0 + 24 * H),
    ],
)
def test_after_an_attempt(
    attempts: int, attempt: Attempt, at: datetime, status: OutboxStatus, next_at: datetime | None
) -> None:
    before = entry(attempts=attempts, version=attempts)
    after = after_attempt(before, attempt, at, POLICY, "" if attempt is Attempt.SENT else "421 try later")
    assert (after.status, after.next_attempt_at) == (status, next_at)
    assert after.attempts == attempts + 1
    assert after.version > before.version  # the new state wins over the old one (and the first record)
    assert after.key == before.key
    assert after.last_error == ("" if attempt is Attempt.SENT else "421 try later")


def test_a_long_error_is_cut() -> None:
    assert len(after_attempt(entry(), Attempt.FAILED, T0, POLICY, "x" * 5000).last_error) == 500


@pytest.mark.parametrize(
    ("record", "now", "due"),
    [
        (entry(), T0, True),  # a first record: at once
        (after_attempt(entry(), Attempt.FAILED, T0, POLICY), T0, False),
        (after_attempt(entry(), Attempt.FAILED, T0, POLICY), T0 + timedelta(seconds=1), True),
        (after_attempt(entry(), Attempt.SENT, T0, POLICY), T0 + timedelta(days=1), False),
        (after_attempt(entry(), Attempt.REFUSED, T0, POLICY), T0 + timedelta(days=1), False),
    ],
)
def test_due(record: OutboxEntry, now: datetime, due: bool) -> None:
    assert record.due(now) is due


def test_made_by_another_process() -> None:
    made = already_sent(entry(attempts=2, version=2))
    assert (made.status, made.version, made.attempts) == (OutboxStatus.SENT, 3, 2)


def test_summary_as_shown_in_status() -> None:
    assert OutboxSummary().as_dict() == {"pending": 0, "dead": 0, "oldest_pending_at": None}
    assert OutboxSummary(2, 1, T0).as_dict()["oldest_pending_at"] == "2026-11-11T09:00:00+00:00"


@pytest.mark.parametrize(
    ("pending", "dead", "notice"),
    [
        (0, 0, ""),
        (1, 0, "1 alert email to you not delivered yet (still being tried)."),
        (3, 0, "3 alert emails to you not delivered yet (still being tried)."),
        (
            2,
            1,
            "2 alert emails to you not delivered yet (still being tried); "
            "1 could not be delivered: the alerts are listed on your students' pages.",
        ),
    ],
)
def test_what_the_web_app_tells_staff(pending: int, dead: int, notice: str) -> None:
    assert undelivered_notice(pending, dead) == notice
