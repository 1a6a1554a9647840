"""`lde replay`'s output: one total order of alerts (issue 24.7)."""

import io
import json

from models.alerts import Rule
from ops.devtools.replay import write_alerts_jsonl
from tests.unit.models.test_announcements import alert


def test_replay_output_is_the_same_bytes_whatever_order_the_alerts_came_in() -> None:
    rows = [
        json.loads(a.model_dump_json())
        for a in (
            alert("s1", Rule.RE_ENGAGED, about=Rule.LOW_ATTENDANCE),
            alert("s1", Rule.RE_ENGAGED, about=Rule.LOW_ENGAGEMENT),
            alert("s0", Rule.LOW_ATTENDANCE),
        )
    ]
    outputs = set()
    for order in (rows, rows[::-1], [rows[1], rows[2], rows[0]]):
        out = io.StringIO()
        assert write_alerts_jsonl(order, out) == 3
        outputs.add(out.getvalue())
    assert len(outputs) == 1
    lines = [json.loads(line) for line in outputs.pop().splitlines()]
    assert [(r["student_id"], r["about_rule"]) for r in lines] == [
        ("s0", None),
        ("s1", "low_attendance"),
        ("s1", "low_engagement"),
    ]
