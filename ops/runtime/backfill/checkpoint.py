"""Where a backfill's judging stands, written after each day judged and stored, so that a run killed
at any moment continues from the last day it finished (it does not start again).

A checkpoint holds what the stream and the evaluator keep in memory: every student's activity state
(the changelog's binary form, models.activity), the rules' memory of each student, the ids of the
alerts raised, the next message offset of each partition and the day judging started. It is written
to a temporary file, flushed to disk and renamed over the last one: a crash leaves the old
checkpoint or the new one, never half of one. Everything a day writes to ClickHouse is absolute or
keyed (counts with their version, alerts by id, the day's scores, memory and progress), so a day
judged again after a crash, from the checkpoint before it, writes the same rows again.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from models.activity import StudentActivity
from models.evaluation import StudentMemory

MAGIC = b"LDE-BACKFILL-1\n"
_LENGTH = struct.Struct("<I")
_STATE = struct.Struct("<HI")


class CheckpointMismatch(ValueError):
    """The work folder's checkpoint belongs to another backfill (other inputs or settings)."""


@dataclass
class Checkpoint:
    """The judging's state after `through` (None: nothing judged yet)."""

    identity: dict[str, Any]
    through: date | None = None
    started_on: date | None = None
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> next message offset
    states: dict[str, StudentActivity] = field(default_factory=dict)
    memory: dict[str, StudentMemory] = field(default_factory=dict)
    raised: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)  # events applied, alerts, dead letters...
    parts: list[str] = field(default_factory=list)  # the files of the partition shares' states

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename, fsync of the folder)."""
        header = json.dumps(
            {
                "identity": self.identity,
                "through": self.through.isoformat() if self.through else None,
                "started_on": self.started_on.isoformat() if self.started_on else None,
                "offsets": {str(p): o for p, o in self.offsets.items()},
                "memory": {sid: m.to_json() for sid, m in self.memory.items()},
                "raised": sorted(self.raised),
                "counts": self.counts,
                "parts": self.parts,
            },
            sort_keys=True,
        ).encode()
        parts = [MAGIC, _LENGTH.pack(len(header)), header]
        pack = _STATE.pack
        for student_id, state in self.states.items():
            key = student_id.encode()
            value = state.to_bytes()
            parts.append(pack(len(key), len(value)))
            parts.append(key)
            parts.append(value)
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(b"".join(parts))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    @classmethod
    def load(cls, path: Path, identity: dict[str, Any]) -> Checkpoint:
        """The checkpoint at `path`, or a fresh one when there is none. CheckpointMismatch when it was
        written for another identity (inputs, days, settings), ValueError when it is damaged."""
        if not path.exists():
            return cls(identity)
        data = path.read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"{path} is not a backfill checkpoint")
        position = len(MAGIC)
        (length,) = _LENGTH.unpack_from(data, position)
        position += _LENGTH.size
        header = json.loads(data[position : position + length])
        position += length
        if header["identity"] != identity:
            raise CheckpointMismatch(
                f"{path.parent} holds a backfill of other inputs or settings: give another --work "
                "folder, or --restart to judge these inputs from the beginning"
            )
        states: dict[str, StudentActivity] = {}
        unpack, size = _STATE.unpack_from, _STATE.size
        while position < len(data):
            key_length, value_length = unpack(data, position)
            position += size
            student_id = data[position : position + key_length].decode()
            position += key_length
            states[student_id] = StudentActivity.from_bytes(data[position : position + value_length])
            position += value_length
        return cls(
            identity,
            date.fromisoformat(header["through"]) if header["through"] else None,
            date.fromisoformat(header["started_on"]) if header["started_on"] else None,
            {int(p): o for p, o in header["offsets"].items()},
            states,
            {sid: StudentMemory.from_json(m) for sid, m in header["memory"].items()},
            set(header["raised"]),
            dict(header["counts"]),
            list(header.get("parts", [])),
        )
