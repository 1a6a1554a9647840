"""Alerts raised for the staff allowed to see them (tutor, programme leader, school, engagement officers)."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Namespace for deterministic alert ids: the same student, rule and episode always give the same id.
ALERT_NAMESPACE = uuid.UUID("6a0f3a52-8f0e-4c55-9d8e-4b1d2f7c9e10")


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
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{student_id}|{rule.value}|{episode_start.isoformat()}{suffix}"))


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
