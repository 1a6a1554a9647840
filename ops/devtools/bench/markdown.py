"""What a bench run found and how it is written into BENCHMARKS.md: the rows of the table, each
section's notes, and the merge that replaces only the measured sections' rows and runs.
"""

from __future__ import annotations

import os
import platform
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the BENCHMARKS.md table; `section` is the `--only` name that measures it."""

    section: str
    measure: str
    value: str
    note: str = ""
    floor: str = "-"
    met: bool | None = None

    def markdown(self) -> str:
        met = "-" if self.met is None else "yes" if self.met else "**no**"
        result = f"{self.value} ({self.note})" if self.note else self.value
        command = f"`python -m ops.devtools.bench --only {self.section}`"
        return f"| {self.measure} | {result} | {self.floor} | {met} | {command} |"


@dataclass
class Results:
    """A run's table rows and each section's notes (for its Runs entry), collected as sections run."""

    section: str = ""  # set by main() before each section runs
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # per section

    def add(
        self, measure: str, value: str, note: str = "", floor: str = "-", met: bool | None = None
    ) -> None:
        print(f"  {measure}: {value} {note} {floor}{'' if met is None else ' met' if met else ' NOT met'}")
        self.rows.append(Row(self.section, measure, value, note, floor, met))

    def note(self, text: str) -> None:
        self.notes[self.section].append(text)


def versions() -> str:
    names = ["faust-streaming", "aiokafka", "kafka-python", "clickhouse-connect", "chdb", "pydantic", "redis"]
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


TABLE_HEADER = ["| measure | result | floor | met | command |", "| --- | --- | --- | --- | --- |"]
RUNS_HEADING = "## Runs"
_SECTION = re.compile(r"--only ([a-z_]+)`")
_RUN = re.compile(r"^- \*\*([a-z_]+)\*\*")
DEFAULT_PREAMBLE = (
    "# Benchmarks\n\n"
    "Speed and memory goals live here, not in tests. `make bench` (`python -m ops.devtools.bench`) measures "
    "them on one embedded Tansu broker; `--only SECTION` measures one section and replaces only its rows "
    "and its entry under Runs."
)


def merge_markdown(existing: str, rows: Sequence[Row], runs: Mapping[str, list[str]]) -> str:
    """BENCHMARKS.md with the rows and run entries of the sections in `runs` replaced (in place, or
    appended when new) and everything else kept: other sections' rows and runs, the prose, and the
    profile notes. Pure, so `--only X` can be tested without running anything."""
    lines = (existing or DEFAULT_PREAMBLE).rstrip("\n").split("\n")
    measured = set(runs)
    new_rows = [row.markdown() for row in rows]

    # The table: old rows of a measured section go; the new rows take the first one's place.
    if TABLE_HEADER[0] in lines:
        start = lines.index(TABLE_HEADER[0]) + 2
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        kept: list[str] = []
        insert_at = None
        for line in lines[start:end]:
            found = _SECTION.search(line)
            if found and found.group(1) in measured:
                if insert_at is None:
                    insert_at = len(kept)
                continue
            kept.append(line)
        insert_at = len(kept) if insert_at is None else insert_at
        lines[start:end] = kept[:insert_at] + new_rows + kept[insert_at:]
    else:
        lines += ["", *TABLE_HEADER, *new_rows]

    # Runs: one entry per section ("- **name**: ..." and its indented lines).
    entries = {
        name: [f"- **{name}**: {text[0]}", *[f"  - {t}" for t in text[1:]]] for name, text in runs.items()
    }
    if RUNS_HEADING not in lines:
        marker = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        lines[marker:marker] = [RUNS_HEADING, ""] if marker < len(lines) else ["", RUNS_HEADING]
    start = lines.index(RUNS_HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks: list[tuple[str | None, list[str]]] = []
    for line in lines[start:end]:
        if not line.strip():
            continue
        found = _RUN.match(line)
        if found or not blocks:
            blocks.append((found.group(1) if found else None, [line]))
        else:
            blocks[-1][1].append(line)
    body = [line for name, block in blocks for line in (entries.pop(name, block) if name else block)]
    body += [line for entry in entries.values() for line in entry]
    lines[start:end] = ["", *body, *([""] if end < len(lines) else [])]
    return "\n".join(lines).rstrip("\n") + "\n"


def run_entry(command: str, seconds: float, notes: list[str]) -> list[str]:
    """A Runs entry: when, how long, on what machine and versions, then the section's notes."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (
        f"{datetime.now(UTC):%Y-%m-%d}, `{command}` ({seconds:.0f} s, load average {load:.1f} at the end): "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions()}; "
        "embedded Tansu broker (memory storage)"
    )
    return [head, *notes]


def write_markdown(results: Results, path: Path, command: str, seconds: dict[str, float]) -> None:
    """Merge this run's sections into BENCHMARKS.md (see merge_markdown)."""
    runs = {name: run_entry(command, secs, results.notes.get(name, [])) for name, secs in seconds.items()}
    existing = path.read_text() if path.exists() else ""
    path.write_text(merge_markdown(existing, results.rows, runs))
