from __future__ import annotations

import threading

import pytest

from models.parallel import map_in_threads


def test_results_come_back_in_the_order_of_the_inputs() -> None:
    names: set[str] = set()

    def square(x: int) -> int:
        names.add(threading.current_thread().name)
        return x * x

    assert map_in_threads(square, range(50)) == [x * x for x in range(50)]
    assert map_in_threads(square, [3]) == [9]  # one item: run here, no thread
    assert map_in_threads(square, []) == []
    assert any(name.startswith("lde-columns") for name in names)


def test_an_items_error_is_raised_to_the_caller() -> None:
    def fails_on_seven(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    with pytest.raises(ValueError, match="seven"):
        map_in_threads(fails_on_seven, range(20))
