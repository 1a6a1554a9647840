"""Alerts raised for the staff allowed to see them (tutor, programme leader, school, engagement officers)."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

#: Namespace for deterministic alert ids: the same student, rule and episode always give the same id.
ALERT_NAMESPACE = uuid.UUID("6a0f3a52-8f0e-4c55-9d8e-4b1d2f7c9e10")


class Rule(StrEnum):
    NO_ENGAGEMENT = "no_engagement"


def alert_id(student_id: str, rule: Rule, episode_start: date) -> str:
    """Deterministic id, so a re-sent or re-evaluated alert is recognised everywhere."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{student_id}|{rule.value}|{episode_start.isoformat()}"))


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
