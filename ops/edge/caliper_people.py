"""Which student a Caliper Person id names, from the settings: LDE_CALIPER_PERSON_PATTERNS and the
user map file LDE_CALIPER_USER_MAP, read once when the collector (or `lde ingest`) starts.

The decisions are models.adapters.caliper's (`PersonMap`, `read_person_map`); this shell reads the
file and says what to fix. A map that cannot be used stops the start (an operator must act); lines
that cannot be read are logged by number, never by value (a map holds student ids).
"""

from __future__ import annotations

import logging

from models.adapters.caliper import PersonMap, read_person_map
from ops.settings import Settings

log = logging.getLogger("lde.collector")


class PersonMapUnusable(ValueError):
    """LDE_CALIPER_USER_MAP cannot be used: the message says why and what to fix."""


def person_map(settings: Settings) -> PersonMap:
    """The configured Person id mapping (empty when neither setting is set). Raises PersonMapUnusable."""
    ids: dict[str, str] = {}
    path = settings.caliper_user_map
    if path is not None:
        try:
            with path.open(encoding="utf-8-sig", newline="") as lines:
                read = read_person_map(lines)
        except (OSError, UnicodeDecodeError) as error:
            raise PersonMapUnusable(f"LDE_CALIPER_USER_MAP {path} cannot be read: {error}") from None
        if not read.ids:
            first = read.problems[0] if read.problems else "no rows"
            raise PersonMapUnusable(
                f"LDE_CALIPER_USER_MAP {path} maps no Person id ({first}): it needs the header "
                "person_id,student_id and a row per person"
            )
        if read.problems:
            log.warning(
                "caliper_user_map_problems path=%s count=%d first=%r",
                path,
                len(read.problems),
                read.problems[:5],
            )
        ids = read.ids
        log.info("caliper_user_map path=%s people=%d rows=%d", path, len(ids), read.rows)
    return PersonMap.of(settings.caliper_person_patterns, ids)
