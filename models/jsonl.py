"""Canonical JSONL in bulk: the hot path of `lde ingest --format lde-jsonl`.

The same outcome as `models.adapters.read_lde_jsonl` for every line (the same events, the same
invalid lines with the same positions, reasons and raw text, blank lines ignored), computed per block
of bytes instead of per text line: a valid line costs one pydantic `validate_json` into a plain
EventRecord (no model object, no decoding to str), and only a line that fails it goes through the
per-line path, which gives it the exact reason. Pure: the caller reads the file and publishes.

Lines are split like a text file opened with newline="" (at \\n, \\r\\n and \\r), numbered from 1 over
the whole file, and decoded as UTF-8 with invalid bytes replaced where the per-line path needs text,
as `lde ingest` opens files. Privacy holds as in the per-line path: an EventRecord keeps only the
declared fields and events are re-serialised from it, never passed through as they came (a line may
repeat a key, and only the last value would be validated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from models.adapters import Invalid
from models.events import EventRecord, InvalidMessage, event_record, parse_event, validate_event_record


@dataclass(slots=True)
class JsonlChunk:
    """The outcome of one block of lines, in line order.

    `invalid` pairs each invalid line with the number of valid events before it in this block, so a
    caller can replay the valid/invalid sequence (the invalid-share guard is order-sensitive) without
    an object per valid line.
    """

    events: list[EventRecord] = field(default_factory=list)
    invalid: list[tuple[int, Invalid]] = field(default_factory=list)
    lines: int = 0


def read_jsonl_block(block: bytes, first_line: int) -> JsonlChunk:
    """Validate every line of `block` (whole lines only) as a canonical event; `first_line` numbers the
    first of them. A bad line costs only itself and is reported at its own line number."""
    out = JsonlChunk()
    events = out.events
    lines = block.splitlines(keepends=True)  # with their ends: a parser's reason counts them
    out.lines = len(lines)
    for index, line in enumerate(lines):
        try:
            events.append(validate_event_record(line))
            continue
        except ValidationError:
            pass
        # The rare line: blank, broken, or valid only after decoding (invalid UTF-8 in an ignored
        # field). Exactly what the per-line reader does with it.
        text = line.decode("utf-8", "replace")
        if not text.strip():
            continue
        try:
            event = parse_event(text)
        except InvalidMessage as error:
            position = f"line {first_line + index}"
            out.invalid.append((len(events), Invalid(position, error.reason, text.rstrip("\r\n"))))
        else:
            events.append(event_record(event))
    return out


def split_complete_lines(buffer: bytes, final: bool) -> tuple[bytes, bytes]:
    """(whole lines, the rest) of what has been read so far: the cut is after the last line break that
    cannot be the first half of a \\r\\n split across two reads. At the end of input all of it is whole."""
    if final:
        return buffer, b""
    cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r", 0, len(buffer) - 1))
    if cut < 0:
        return b"", buffer
    return buffer[: cut + 1], buffer[cut + 1 :]
