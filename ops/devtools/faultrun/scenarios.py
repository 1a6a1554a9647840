"""The seeded fault runs the reliability tests assert on: kill -9 at chosen moments, a worker joining
and leaving, a backlog taken over from a frozen worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.faultload import Workload
from ops.devtools.faultrun.cluster import Cluster
from ops.devtools.faultrun.processes import Worker
from ops.devtools.faultrun.verdict import Report, clean_replay_alerts, verdict
from ops.runtime.embedded import wait_until


def run_with_kills(
    work: Path,
    seed: int,
    kills: int = 3,
    workers: int = 2,
    students: int = 200,
    feed_pause: float = 2.0,
    days: int = 12,
) -> Report:
    """One seeded run: `workers` workers while the workload flows (one day every `feed_pause`
    seconds); `kills` kill -9s at different moments (mid-batch, during a stalled ClickHouse write,
    while a restarted worker recovers). Alerts are compared with a clean replay of the same input."""
    import random

    from models.faultload import generate

    rng = random.Random(seed)
    load = generate(seed, students=students, days=days)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster")
    cluster.start()
    try:
        cluster.publish_roster(load)
        pool = [cluster.add_worker(load.days[0]) for _ in range(workers)]
        feeder = cluster.feed_in_background(load, pause=feed_pause)
        moments: list[Callable[[Worker], None]] = [kill_mid_batch, kill_in_clickhouse_write, kill_in_recovery]
        for i in range(kills):
            victim = rng.choice(pool)
            moments[i % len(moments)](victim)
            cluster.kills += 1
            time.sleep(rng.uniform(0.5, 3.0))
            victim.start(wait=True)
        feeder.join()
        if not cluster.wait_settled(load.days[-1], timeout=150):
            described = cluster.describe()  # the workers' stacks go into their logs first
            keep_logs(work, seed, "not settled\n" + described)
            raise AssertionError("the cluster did not settle:\n" + described)
        report = verdict(cluster, load, started, expected, cohort=True)
        if not report.exact():
            kept = keep_logs(work, seed, report.line())
            print(f"fault_run_logs_kept seed={seed} path={kept}")  # shown with a failed test's output
            report.notes.append(f"logs kept in {kept}")
        return report
    finally:
        cluster.stop()


def keep_logs(work: Path, seed: int, why: str) -> Path:
    """Copy every log of a failed run (workers, broker, Redis) out of the test's temporary folder,
    which pytest deletes after a few runs, into LDE_FAULT_LOGS (default .lde-fault-logs/), so that
    an intermittent failure can be diagnosed after the fact."""
    import os
    import shutil
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = Path(os.environ.get("LDE_FAULT_LOGS", ".lde-fault-logs")) / f"seed-{seed}-{stamp}"
    kept.mkdir(parents=True, exist_ok=True)
    for log in work.rglob("*.log"):
        target = kept / log.relative_to(work)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, target)
    (kept / "why.txt").write_text(why + "\n")
    return kept.resolve()


@dataclass
class MembershipRun:
    """A run with a worker added and removed while events flow, and what the newcomer did."""

    report: Report
    newcomer_partitions: list[int]  # what the added worker owned while it ran
    newcomer_applied: int  # events it applied
    others_after: list[list[int]]  # the partitions each original worker owned at the end


def run_with_membership_changes(
    work: Path, seed: int, workers: int = 2, students: int = 200, feed_pause: float = 2.5
) -> MembershipRun:
    """`workers` workers while the workload flows; a further worker joins (a rebalance hands it
    partitions), applies events, and leaves again by a clean stop (a rebalance hands them back), all
    before the last day is published. Compared with the ledger and the clean replay like a kill run."""
    load = generate_load(seed, students)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster")
    cluster.start()
    try:
        cluster.publish_roster(load)
        pool = [cluster.add_worker(load.days[0]) for _ in range(workers)]
        feeder = cluster.feed_in_background(load, pause=feed_pause)
        assert wait_until(lambda: (pool[0].status() or {}).get("events_applied", 0) > 0, 60, 0.2)
        newcomer = cluster.add_worker(load.days[0])
        owned: set[int] = set()
        applied = 0

        def took_part() -> bool:
            nonlocal applied
            status = newcomer.status() or {}
            owned.update(status.get("partitions", []))
            applied = max(applied, status.get("events_applied", 0))
            return bool(owned) and applied > 0

        joined = wait_until(took_part, 60, 0.2)
        newcomer.stop()
        feeder.join()
        if not joined:
            raise AssertionError("the added worker never took part:\n" + cluster.describe())
        if not cluster.wait_settled(load.days[-1], timeout=150):
            raise AssertionError("the cluster did not settle:\n" + cluster.describe())
        others = [sorted((w.status() or {}).get("partitions", [])) for w in pool]
        return MembershipRun(
            verdict(cluster, load, started, expected, cohort=True), sorted(owned), applied, others
        )
    finally:
        cluster.stop()


@dataclass
class TakeoverRun:
    """A run where one worker took over partitions with days of backlog from a frozen one."""

    report: Report
    backlog_days: int  # days published while the other worker was frozen
    survivor_partitions: list[int]  # what the survivor owned at the end


def run_with_backlog_takeover(work: Path, seed: int, students: int = 120, days: int = 10) -> TakeoverRun:
    """Two workers; one is frozen (SIGSTOP) after the first days while the rest of the term is
    published, so the other's partitions run days ahead of the frozen one's; then the frozen worker is
    killed and the survivor takes its partitions over, with days of backlog older than the lateness
    limit counted from the survivor's own partitions. Compared with the ledger and a clean replay.

    The evaluator ticks every 5 s here, so the survivor applies the backlog before its next tick (the
    moment it used to learn which partitions it owns: issue 8's "whole partitions' later days")."""
    from models.faultload import generate

    load = generate(seed, students=students, days=days)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster", extra_env={"LDE_EVALUATOR_INTERVAL_SECONDS": "5"})
    cluster.start()
    try:
        cluster.publish_roster(load)
        survivor, frozen = (cluster.add_worker(load.days[0]) for _ in range(2))

        def both_own() -> bool:
            return all((w.status() or {}).get("partitions") for w in (survivor, frozen))

        if not wait_until(both_own, 90, 0.5):
            raise AssertionError("the two workers never shared the partitions:\n" + cluster.describe())
        first, rest = load.days[:2], load.days[2:]
        cluster.publish_days(load, days=first)
        if not cluster.wait_settled(first[-1], timeout=90):
            raise AssertionError("the first days did not settle:\n" + cluster.describe())
        time.sleep(6.0)  # an evaluator tick with the survivor's current partitions
        frozen.freeze()
        cluster.publish_days(load, days=rest)

        def survivor_done() -> bool:
            status = survivor.status() or {}
            return status.get("activity_lag") == 0 and status.get("events_applied", 0) > 0

        wait_until(survivor_done, 60, 0.5)
        frozen.kill()
        cluster.kills += 1
        if not cluster.wait_settled(load.days[-1], timeout=150):
            raise AssertionError("the cluster did not settle:\n" + cluster.describe())
        owned = sorted((survivor.status() or {}).get("partitions", []))
        return TakeoverRun(verdict(cluster, load, started, expected, cohort=True), len(rest), owned)
    finally:
        cluster.stop()


def generate_load(seed: int, students: int) -> Workload:
    from models.faultload import generate

    return generate(seed, students=students)


def kill_mid_batch(worker: Worker) -> None:
    """kill -9 while the worker applies events."""
    status = worker.status() or {}
    before = status.get("events_applied", 0)
    wait_until(lambda: (worker.status() or {}).get("events_applied", 0) > before, 20, 0.05)
    worker.kill()


def kill_in_clickhouse_write(worker: Worker) -> None:
    """kill -9 while an activity write has landed in ClickHouse and the state is not yet written."""
    from sinks.faults import inject

    inject(worker.fault_file, "stall", 30)
    time.sleep(2.0)  # the next batch's write lands and stalls
    worker.kill()
    worker.fault_file.unlink(missing_ok=True)


def kill_in_recovery(worker: Worker) -> None:
    """Restart the worker, then kill -9 it while it recovers its tables (live, not caught up)."""
    worker.stop()
    worker.start(wait=False)
    wait_until(worker.live, 60, 0.05)
    worker.kill()
