"""The staff-load bench's readings of what the worker says (pure)."""

from __future__ import annotations

from ops.devtools.bench.staff_load import judged_days, metric


def test_each_day_judged_is_read_from_the_status_in_order() -> None:
    status = {
        "recent_judgements": [
            {"day": "2027-01-04", "alerts": 12, "seconds": 0.412, "judge_seconds": 0.3, "cpu_seconds": 0.1},
            {"day": "2027-01-05", "alerts": 0, "seconds": 1.05, "judge_seconds": 0.5, "cpu_seconds": 0.2},
        ]
    }
    assert judged_days(status) == [0.412, 1.05]
    assert judged_days(status, "judge_seconds") == [0.3, 0.5]
    assert judged_days(status, "cpu_seconds") == [0.1, 0.2]
    assert judged_days({}) == []  # a worker from before the list


def test_a_metric_sums_its_labelled_samples() -> None:
    text = 'lde_web_shed_total{reason="budget"} 3.0\nlde_web_shed_total{reason="loop_lag"} 2.0\n'
    assert metric(text, "lde_web_shed_total") == 5.0
    assert metric(text, "lde_web_shed_total", 'reason="budget"') == 3.0
    assert metric(text, "lde_missing_total") == 0.0
