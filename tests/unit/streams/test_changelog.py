"""The activity agent writes its table's changelog records itself: they must be Faust's own bytes."""

import faust
import pytest

from models.activity import StudentActivity
from streams.state import StudentStateValue, changelog_key, register_codec


@pytest.mark.parametrize("student_id", ["S0000001", "B-12 3", 'quote"and\\slash', "Zoë", "学生"])
def test_changelog_key_is_what_fausts_table_writes(student_id: str) -> None:
    register_codec()  # as the app does when it is built
    app = faust.App("changelog-key-test", broker="kafka://127.0.0.1:1", store="memory://")
    table = app.Table("activity", key_type=str, value_type=StudentStateValue)
    key, _ = table.changelog_topic.prepare_key(student_id, table.key_serializer)
    assert changelog_key(student_id) == key
    state = StudentActivity({739_000: [1, 0, 2]}, offset=7, last_active=739_000, revision=3)
    value, _ = table.changelog_topic.prepare_value(state, table.value_serializer)
    assert value == state.to_bytes()
    assert StudentActivity.from_bytes(value) == state
