"""The xAPI statements resource's rules (xAPI 1.0.3, IEEE 9274.1.1), for a statement consumer. Pure.

What the LRS decides about a request before anything is published: the version header, the body's
statements (one or an array) with ids checked or assigned, each statement's content digest (for 409),
voiding statements and their targets, and each statement's fate against what the statement ledger
remembers. The HTTP shell (ops.edge.xapi_resource) and the ledger (sinks.statement_ledger) only carry
these decisions out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any

import pydantic_core

from models.adapters.base import Invalid, Skipped, dig, settle, student_of
from models.adapters.xapi import statement_outcome
from models.events import ActivityEvent, AttendanceStatus, Attributes, Source

#: The versions this resource answers, newest first (GET /xapi/about); 2.0.0 is IEEE 9274.1.1.
VERSIONS: tuple[str, ...] = ("1.0.3", "2.0.0")
VERSION_HEADER = "X-Experience-API-Version"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
#: Properties the LRS sets or that do not change what a statement says (xAPI's statement comparison).
_NOT_CONTENT = ("authority", "stored", "version")


class StatementsRefused(ValueError):
    """A request the resource refuses whole (xAPI: a batch with one bad statement is rejected)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def response_version(header: str | None) -> str:
    """The version to answer with: the client's own 2.0.x, otherwise 1.0.3 (spec: the latest patch)."""
    return "2.0.0" if (header or "").strip().startswith("2.0") else "1.0.3"


def check_version(header: str | None) -> str | None:
    """Why the X-Experience-API-Version header is refused (400), or None: 1.0, 1.0.x and 2.0.x are."""
    if header is None or not header.strip():
        return f"missing {VERSION_HEADER} header: send e.g. '{VERSION_HEADER}: 1.0.3'"
    value = header.strip()
    parts = value.split(".")
    if (
        not all(part.isdigit() for part in parts)
        or len(parts) not in (2, 3)
        or (parts[0], parts[1]) not in (("1", "0"), ("2", "0"))
    ):
        return f"unsupported {VERSION_HEADER} (this LRS speaks {', '.join(VERSIONS)})"
    return None


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: object) -> bool:
    """An xAPI statement id: a UUID in its canonical hyphenated form (any case)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def read_statements(
    body: str, new_id: Callable[[], str], statement_id: str | None = None
) -> list[dict[str, Any]]:
    """The statements of a POST (one object or an array) or a PUT (one object, id from the query).

    Ids are checked (UUIDs, not repeated) and assigned where missing; every statement must be a JSON
    object with an actor, a verb id and an object (the adapter says more). Raises StatementsRefused.
    """
    try:
        # pydantic's parser: a quarter faster than json.loads, and the largest cost of a request.
        decoded = pydantic_core.from_json(body)
    except ValueError as error:  # its message gives the place, never the text
        raise StatementsRefused(400, f"not JSON: {error}") from None
    if statement_id is not None:
        if not isinstance(decoded, dict):
            raise StatementsRefused(400, "PUT takes one statement (a JSON object)")
        if not is_uuid(statement_id):
            raise StatementsRefused(400, "statementId: not a UUID")
        given = decoded.get("id")
        if given is not None and (not isinstance(given, str) or given.lower() != statement_id.lower()):
            raise StatementsRefused(400, "statement 1: id differs from the statementId parameter")
        decoded = {**decoded, "id": statement_id}
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items:
        raise StatementsRefused(400, "an empty array holds no statement")
    statements: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise StatementsRefused(400, f"statement {number}: not a JSON object")
        given = item.get("id")  # the parsed objects are this call's own: set in place
        if given is None:
            item["id"] = new_id()
        elif not is_uuid(given):
            raise StatementsRefused(400, f"statement {number}: id is not a UUID")
        else:
            item["id"] = given.lower()
        for needed, value in (
            ("actor", item.get("actor")),
            ("verb.id", dig(item, "verb", "id")),
            ("object", item.get("object")),
        ):
            if value is None or value == "":
                raise StatementsRefused(400, f"statement {number}: {needed} missing")
        if item["id"] in seen:
            raise StatementsRefused(400, f"statement {number}: id repeated in the batch")
        seen.add(item["id"])
        statements.append(item)
    return statements


def digest(statement: dict[str, Any]) -> str:
    """A digest of what a statement says, without the properties the LRS sets: the same statement
    sent again (a retry) matches, a different one under the same id does not.

    The top-level properties are sorted; nested objects keep the order they came in (a client sends a
    statement the same way each time, and sorting every level in Python cost half the resource's
    planning time, against a quarter of that for this)."""
    content = {k: statement[k] for k in sorted(statement) if k not in _NOT_CONTENT}
    try:
        text = pydantic_core.to_json(content)
    except (ValueError, TypeError, pydantic_core.PydanticSerializationError):  # e.g. an int beyond 64 bits
        text = json.dumps(content, separators=(",", ":")).encode()
    return hashlib.blake2b(text, digest_size=16).hexdigest()


def void_target(statement: dict[str, Any], number: int) -> str | None:
    """The id a voiding statement voids (None for any other statement); raises StatementsRefused for
    a voiding statement whose object is not a StatementRef with a UUID (xAPI requires one)."""
    if dig(statement, "verb", "id") != VOIDED:
        return None
    target = statement.get("object")
    if not isinstance(target, dict) or target.get("objectType") != "StatementRef":
        raise StatementsRefused(
            400, f"statement {number}: a voiding statement's object must be a StatementRef"
        )
    if not is_uuid(target.get("id")):
        raise StatementsRefused(400, f"statement {number}: the StatementRef's id is not a UUID")
    return str(target["id"]).lower()


# -- what the ledger remembers, and what a statement's arrival means against it -----------------------


class Kind(StrEnum):
    COUNTED = "counted"  # an engagement event was published for it
    SKIPPED = "skipped"  # accepted, not engagement (unmapped verb, no user): nothing counted
    VOIDING = "voiding"  # a voiding statement
    PENDING = "pending"  # not seen yet, but a voiding statement for it was: it must never count


@dataclass(frozen=True, slots=True)
class Entry:
    """One statement id as the ledger keeps it: no statement text, only what a void needs."""

    kind: Kind
    digest: str = ""
    student_id: str | None = None
    source: str | None = None
    occurred_at: str | None = None  # ISO 8601, UTC
    status: str | None = None  # attendance status, when the source is attendance
    voided_by: str | None = None

    def to_json(self) -> bytes:
        return self.to_text().encode()

    def to_text(self) -> str:
        fields = {
            "k": self.kind.value,
            "d": self.digest,
            "s": self.student_id,
            "src": self.source,
            "at": self.occurred_at,
            "st": self.status,
            "v": self.voided_by,
        }
        return json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        data = json.loads(text)
        return cls(
            Kind(data["k"]),
            data.get("d", ""),
            data.get("s"),
            data.get("src"),
            data.get("at"),
            data.get("st"),
            data.get("v"),
        )


class Arrival(StrEnum):
    NEW = "new"  # never seen: process it
    SAME = "same"  # the same content again: a no-op (xAPI: no error, nothing stored twice)
    CONFLICT = "conflict"  # the id is taken by different content: 409
    VOIDED_EARLIER = "voided_earlier"  # its void came first: accept it, count nothing


def arrival(known: Entry | None, statement_digest: str) -> Arrival:
    """What a statement with this digest means given the ledger's entry for its id."""
    if known is None:
        return Arrival.NEW
    if known.kind is Kind.PENDING:
        return Arrival.VOIDED_EARLIER
    return Arrival.SAME if known.digest == statement_digest else Arrival.CONFLICT


class VoidEffect(StrEnum):
    RETRACT = "retract"  # the target was counted: publish a retraction of its event
    PENDING = "pending"  # the target is unknown: remember the void so it never counts
    NOTHING = "nothing"  # the target counted nothing, or is already voided


#: Why a void changed nothing (logged and counted by reason; fixed phrases, never input).
VOIDS_A_VOID = "voids a voiding statement"
ALREADY_VOIDED = "already voided"
NOT_COUNTED = "voids a statement that counted nothing"


def void_effect(target: Entry | None) -> tuple[VoidEffect, str | None]:
    """What voiding the target entry does, and why not when it does nothing (xAPI: a voiding
    statement cannot be voided; voiding an unknown statement is accepted)."""
    if target is None:
        return VoidEffect.PENDING, None
    if target.voided_by is not None or target.kind is Kind.PENDING:
        return VoidEffect.NOTHING, ALREADY_VOIDED
    if target.kind is Kind.VOIDING:
        return VoidEffect.NOTHING, VOIDS_A_VOID
    if target.kind is Kind.SKIPPED:
        return VoidEffect.NOTHING, NOT_COUNTED
    return VoidEffect.RETRACT, None


# -- a request's plan: what to publish and what to remember ------------------------------------------


@dataclass
class Plan:
    """What a request of statements comes to (pure: built from the statements and the ledger's entries)."""

    ids: list[str]
    events: list[ActivityEvent] = field(default_factory=list)
    retract: list[ActivityEvent] = field(default_factory=list)
    new: dict[str, Entry] = field(default_factory=dict)  # recorded unless taken meanwhile (SET NX)
    replace: dict[str, Entry] = field(default_factory=dict)  # overwritten (a void on its target)
    same: int = 0  # statements sent again with the same content: no-ops
    skipped: list[str] = field(default_factory=list)  # why statements count nothing (fixed phrases)

    def outcome(self) -> dict[str, int]:
        """Counts for the response header and the log line."""
        return {
            "accepted": len(self.events),
            "retracted": len(self.retract),
            "same": self.same,
            "skipped": len(self.skipped),
        }


def _entry_event(statement_id: str, entry: Entry) -> ActivityEvent:
    """The event a counted entry stands for, rebuilt for its retraction."""
    status = AttendanceStatus(entry.status) if entry.status else None
    return ActivityEvent(
        event_id=statement_id,
        student_id=entry.student_id or "",
        source=Source(entry.source or ""),
        occurred_at=datetime.fromisoformat(entry.occurred_at or ""),
        attributes=Attributes(status=status) if status is not None else None,
    )


def _counted_entry(statement_digest: str, event: ActivityEvent) -> Entry:
    status = event.attributes.status if event.attributes is not None else None
    return Entry(
        Kind.COUNTED,
        statement_digest,
        event.student_id,
        event.source.value,
        event.occurred_at.astimezone(UTC).isoformat(),
        status.value if status is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What planning needs of one statement, without the statement: made before the ledger is asked,
    so the request's parsed JSON dies young (see ops.edge.xapi_resource)."""

    statement_id: str
    digest: str
    target: str | None = None  # the id a voiding statement voids
    event: ActivityEvent | None = None  # the engagement it means, if any
    skip: str | None = None  # why it counts nothing, if it is not a void
    student: str | None = None  # the student of a skipped statement (its ledger key names them)


def prepare(statements: Sequence[dict[str, Any]], stored: str) -> list[Prepared]:
    """Each statement's id, digest, void target and mapping (the adapter's); `stored` is the LRS's
    time (ISO 8601, UTC), the time of a statement without a timestamp. Raises StatementsRefused (400)
    for a statement the adapter cannot read: the whole request is refused, as xAPI says."""
    out = []
    for number, statement in enumerate(statements, start=1):
        statement_digest = digest(statement)
        target = void_target(statement, number)
        if target is not None:
            out.append(Prepared(statement["id"], statement_digest, target=target))
            continue
        statement["stored"] = stored  # the LRS sets it (after the digest, which leaves it out)
        outcome = settle(f"statement {number}", str, partial(statement_outcome, statement))
        if isinstance(outcome, Invalid):
            raise StatementsRefused(400, f"{outcome.position}: {outcome.reason}")
        if isinstance(outcome, Skipped):
            student = student_of(dig(statement, "actor", "account", "name"))
            out.append(Prepared(statement["id"], statement_digest, skip=outcome.reason, student=student))
        else:
            out.append(Prepared(statement["id"], statement_digest, event=outcome.event))
    return out


def targets(prepared: Sequence[Prepared]) -> list[str]:
    """The ids the ledger is asked about: the statements' own and their voids' targets."""
    return [p.statement_id for p in prepared] + [p.target for p in prepared if p.target is not None]


def plan_statements(statements: Sequence[dict[str, Any]], known: Mapping[str, Entry], stored: str) -> Plan:
    """The plan for statements read by read_statements (see prepare and plan_prepared)."""
    return plan_prepared(prepare(statements, stored), known)


def plan_prepared(prepared: Sequence[Prepared], known: Mapping[str, Entry]) -> Plan:
    """The plan, given the ledger's entries for the statements' ids and their voids' targets. Raises
    StatementsRefused (409) for an id taken by different content: nothing of the request is stored."""
    plan = Plan([p.statement_id for p in prepared])
    voids: list[tuple[str, str]] = []
    for number, item in enumerate(prepared, start=1):
        statement_id = item.statement_id
        came = arrival(known.get(statement_id), item.digest)
        if came is Arrival.CONFLICT:
            raise StatementsRefused(
                409, f"statement {number}: its id is already used by a different statement"
            )
        if came is Arrival.SAME:
            plan.same += 1
            continue
        if item.target is not None:
            entry = Entry(Kind.VOIDING, item.digest)
            if came is Arrival.VOIDED_EARLIER:
                plan.replace[statement_id] = entry
            else:
                plan.new[statement_id] = entry
            voids.append((statement_id, item.target))
            plan.skipped.append("voiding statement")
        elif came is Arrival.VOIDED_EARLIER:
            student = item.event.student_id if item.event is not None else item.student
            voided_by = known[statement_id].voided_by
            plan.replace[statement_id] = Entry(Kind.SKIPPED, item.digest, student, voided_by=voided_by)
            plan.skipped.append(ALREADY_VOIDED)
        elif item.event is None:
            plan.new[statement_id] = Entry(Kind.SKIPPED, item.digest, item.student)
            plan.skipped.append(item.skip or NOT_COUNTED)
        else:
            plan.events.append(item.event)
            plan.new[statement_id] = _counted_entry(item.digest, item.event)
    for void_id, target_id in voids:
        _void(plan, void_id, target_id, known)
    return plan


def _void(plan: Plan, void_id: str, target_id: str, known: Mapping[str, Entry]) -> None:
    """Apply one voiding statement to the plan: its target may be in this request or in the ledger."""
    in_request = target_id in plan.new or target_id in plan.replace
    target = plan.new.get(target_id) or plan.replace.get(target_id) or known.get(target_id)
    effect, why = void_effect(target)
    if effect is VoidEffect.PENDING:
        plan.new[target_id] = Entry(Kind.PENDING, voided_by=void_id)
    elif effect is VoidEffect.NOTHING:
        plan.skipped.append(why or NOT_COUNTED)
    elif target is not None and in_request:  # counted in this very request: never publish it
        plan.events = [e for e in plan.events if e.event_id != target_id]
        plan.new[target_id] = replace(target, kind=Kind.SKIPPED, voided_by=void_id)
    elif target is not None:
        plan.retract.append(_entry_event(target_id, target))
        plan.replace[target_id] = replace(target, voided_by=void_id)


def resolve_races(new: Mapping[str, Entry], found: Mapping[str, Entry]) -> Plan:
    """What to do for new entries whose id another request recorded first (found: what it recorded):
    a statement whose void came meanwhile, or a void whose target came meanwhile, is retracted now
    (it was published before this retraction, so the stream applies them in that order)."""
    out = Plan([])
    for statement_id, theirs in found.items():
        ours = new[statement_id]
        if ours.kind is Kind.COUNTED and theirs.kind is Kind.PENDING:
            out.retract.append(_entry_event(statement_id, ours))
            out.replace[statement_id] = replace(ours, voided_by=theirs.voided_by)
        elif ours.kind is Kind.PENDING and theirs.kind is Kind.COUNTED and theirs.voided_by is None:
            out.retract.append(_entry_event(statement_id, theirs))
            out.replace[statement_id] = replace(theirs, voided_by=ours.voided_by)
    return out
