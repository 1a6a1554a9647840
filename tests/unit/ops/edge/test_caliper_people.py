"""The Caliper Person id mapping from the settings: the user map file read at start, refused with what
to fix when it cannot be used, its bad lines logged by number only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from ops.edge.caliper_people import PersonMapUnusable, person_map
from ops.settings import Settings
from tests.fixtures import caliper as fixtures


def test_nothing_configured_maps_nobody() -> None:
    people = person_map(Settings())
    assert people.student("https://example.edu/users/900300001") is None


def test_the_patterns_and_the_file_together(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        caliper_person_patterns=fixtures.PATTERNS, caliper_user_map=fixtures.path(fixtures.PERSON_MAP)
    )
    with caplog.at_level(logging.INFO, logger="lde.collector"):
        people = person_map(settings)
    assert people.student("https://sso.example.edu/people/c.khan") == "900300003"
    assert people.student("https://example.edu/users/900300001") == "900300001"
    logged = caplog.text
    assert "caliper_user_map_problems" in logged and "line 4" in logged
    assert "900300003" not in logged and "c.khan" not in logged  # numbers of lines, never values


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("canvas_user_id,sis_user_id\n1,900000001\n", "header lacks the columns person_id and student_id"),
        ("person_id,student_id\n", "no rows"),
        (b"person_id,student_id\n\xff\xfe,9\n", "cannot be read"),
    ],
)
def test_an_unusable_user_map_stops_the_start_with_what_to_fix(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "people.csv"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(PersonMapUnusable, match=message) as caught:
        person_map(Settings(caliper_user_map=path))
    assert "LDE_CALIPER_USER_MAP" in str(caught.value)


def test_a_bad_pattern_is_refused_when_the_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDE_CALIPER_PERSON_PATTERNS", '["https://example\\\\.edu/users/(\\\\d+)"]')
    with pytest.raises(ValidationError, match="named group"):
        Settings()
    monkeypatch.setenv("LDE_CALIPER_PERSON_PATTERNS", '["https://example\\\\.edu/users/(?P<student>\\\\d+)"]')
    assert person_map(Settings()).student("https://example.edu/users/42") == "42"
