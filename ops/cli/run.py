"""Running LDE: `lde up` (the service), `lde web` and `lde edge` (the staff surface and the HTTP edge
as processes of their own), `lde demo`, and simulated terms (`lde simulate`,
`lde replay`, `lde quality`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

from models.roster import CsvRowError, load_absences, load_roster
from ops.cli.common import fail
from ops.settings import Settings


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from ops.runtime import service

    return service.run(settings)


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from ops.runtime import standalone

    return standalone.run(settings, "web")


def cmd_edge(settings: Settings, args: argparse.Namespace) -> int:
    from ops.runtime import standalone

    return standalone.run(settings, "edge")


def _devtool(name: str) -> ModuleType | None:
    """A development tool's module, or None where the checkout has no ops/devtools (the production
    image leaves it out, .dockerignore); a tool whose own import breaks is a bug, raised as one."""
    try:
        return importlib.import_module(f"ops.devtools.{name}")
    except ModuleNotFoundError as error:
        if error.name not in ("ops.devtools", f"ops.devtools.{name}"):
            raise
        return None


def _no_devtools(command: str) -> int:
    return fail(f"lde {command} is a development tool: run it from a source checkout (make install)")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    demo = _devtool("demo")
    if demo is None:
        return _no_devtools("demo")
    run_demo = demo.run_demo

    return run_demo(settings, students=args.students, weeks=args.weeks, seed=args.seed)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    simulator = _devtool("simulator")
    if simulator is None:
        return _no_devtools("simulate")
    simulate, write_files = simulator.simulate, simulator.write_files
    profiles = simulator.Profiles() if args.profiles else simulator.NO_PROFILES
    sim = simulate(
        students=args.students,
        weeks=args.weeks,
        seed=args.seed,
        timezone=settings.timezone,
        profiles=profiles,
    )
    paths = write_files(sim, Path(args.out))
    populations = ", with the populations of issue 24" if args.profiles else ""
    print(
        f"simulated {len(sim.students)} students over {sim.weeks} weeks "
        f"from {sim.term_start} (seed {sim.seed}{populations})"
    )
    for name, path in paths.items():
        print(f"  {name}: {path}")
    weeks = json.dumps([monday.isoformat() for monday in sorted(sim.non_teaching_weeks)])
    prefix = f"LDE_NON_TEACHING_WEEKS='{weeks}' " if sim.non_teaching_weeks else ""
    print(
        f"replay it: {prefix}lde replay --roster {paths['roster']} --absences {paths['absences']} "
        f"--events {paths['events']} --from {sim.term_start} --through {sim.term_end} --out alerts.jsonl"
    )
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    import tempfile
    from datetime import date

    replay_tool = _devtool("replay")
    if replay_tool is None:
        return _no_devtools("replay")
    read_replay_input, replay, write_alerts_jsonl = (
        replay_tool.read_replay_input,
        replay_tool.replay,
        replay_tool.write_alerts_jsonl,
    )
    roster_items = list(load_roster(Path(args.roster)))
    absence_items = list(load_absences(Path(args.absences))) if args.absences else []
    bad = [i for i in roster_items + absence_items if isinstance(i, CsvRowError)]
    for error in bad:
        print(f"  invalid row skipped: {error}", file=sys.stderr)
    with Path(args.events).open(encoding="utf-8", errors="replace") as handle:
        data = read_replay_input(
            (r for r in roster_items if not isinstance(r, CsvRowError)),
            (a for a in absence_items if not isinstance(a, CsvRowError)),
            handle,
            settings.timezone,
        )
    through = date.fromisoformat(args.through)
    first = date.fromisoformat(args.first) if args.first else None
    with tempfile.TemporaryDirectory(prefix="lde-replay-") as work:
        alerts = replay(settings, data, through, Path(work) / "data", first)
    with Path(args.out).open("w") as out:
        count = write_alerts_jsonl(alerts, out)
    events = sum(len(v) for v in data.events_by_day.values())
    print(
        f"replayed {events} events for {len(data.roster)} students through {through}: "
        f"{count} alerts written to {args.out} ({data.invalid_lines} invalid lines skipped)"
    )
    return 0


def cmd_quality(settings: Settings, args: argparse.Namespace) -> int:
    quality = _devtool("quality")
    if quality is None:
        return _no_devtools("quality")
    measure, table = quality.measure, quality.table
    results = measure(settings, args.students, args.weeks, args.seeds)
    print(table(results, args.students, args.weeks, args.seeds))
    return 0
