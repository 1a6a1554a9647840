"""Alerts raised for the staff allowed to see them (tutor, programme leader, school, engagement officers)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Namespace for deterministic alert ids: the same student, rule and episode always give the same id.
ALERT_NAMESPACE = uuid.UUID("6a0f3a52-8f0e-4c55-9d8e-4b1d2f7c9e10")
_NAMESPACE_BYTES = ALERT_NAMESPACE.bytes


class Rule(StrEnum):
    NO_ENGAGEMENT = "no_engagement"
    LOW_ENGAGEMENT = "low_engagement"
    LOW_ATTENDANCE = "low_attendance"
    RE_ENGAGED = "re_engaged"  # an open episode closed: the student is back
    ESCALATION = "escalation"  # an episode still open 14 days after its alert


def alert_id(student_id: str, rule: Rule, episode_start: date, about: Rule | None = None) -> str:
    """Deterministic id, so a re-sent or re-evaluated alert is recognised everywhere.

    `about` names the episode's rule for re_engaged and escalation alerts.
    """
    suffix = f"|{about.value}" if about is not None else ""
    name = f"{student_id}|{rule.value}|{episode_start.isoformat()}{suffix}"
    # uuid.uuid5 by hand (the same id, a quarter of the time: a first day raises ~100,000 alerts).
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Alert(BaseModel):
    """One alert: who, which rule, on which local day, why (in words a tutor understands)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    student_id: str
    rule: Rule
    raised_on: date
    episode_start: date
    days_silent: int
    last_active_on: date | None
    programme_code: str
    year_of_study: int
    mode: str
    school: str
    personal_tutor_id: str
    explanation: str
    about_rule: Rule | None = None  # the episode's rule, for re_engaged and escalation
    score: float | None = None
    band: str | None = None
    figures: dict[str, Any] = Field(default_factory=dict)  # the numbers behind the explanation
