"""Every upstream fixture goes in through `lde ingest` with the expected counts, and nothing private
(titles, document names, URLs) is found afterwards in any topic, ClickHouse table or Redis key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from tests.fixtures import upstream
from tests.integration.conftest import assert_stored_nowhere, make_run
from tests.integration.test_restart_and_privacy import lde, search_topics

pytestmark = pytest.mark.integration

# (accepted, duplicates within the file, skipped by reason, invalid), as `lde ingest` reports them.
EXPECTED = {
    "caliper": (3, 1, {"logoff": 1, "no user": 1}, 0),
    "xapi": (7, 0, {"unmapped verb": 1}, 1),
    "ezproxy": (3, 0, {"no user": 1, "asset request": 1, "denied": 1, "not found": 1, "server error": 1}, 1),
    "papercut": (3, 0, {"nothing printed": 1}, 1),
    "pc-logons": (2, 1, {"logoff": 2, "no user": 1}, 1),
    "remote-sessions": (2, 0, {"no user": 1}, 0),
    "library-loans": (4, 0, {}, 1),
    "attendance": (5, 1, {}, 1),
}


def summary_lines(accepted: int, duplicates: int, skipped: dict[str, int], invalid: int) -> list[str]:
    lines = [f"accepted:   {accepted}", f"duplicates: {duplicates}", f"skipped:    {sum(skipped.values())}"]
    lines += [f"  {reason}: {n}" for reason, n in sorted(skipped.items())]
    lines.append(f"invalid:    {invalid} (sent to the dead-letter topic)")
    return lines


def test_every_sample_goes_in_and_nothing_private_is_kept(tmp_path: Path) -> None:
    run: EventTimeRun = make_run(tmp_path / "lde")
    secrets = tuple(sorted(upstream.private_strings()))
    run.start()
    try:
        roster = lde(run, "roster", "load", str(upstream.path(upstream.ROSTER)))
        assert roster.returncode == 0, roster.stderr
        absences = lde(run, "absences", "load", str(upstream.path(upstream.ABSENCES)))
        assert absences.returncode == 0, absences.stderr
        total = 0
        for fmt, filename in upstream.FEEDS.items():
            result = lde(run, "ingest", "--format", fmt, str(upstream.path(filename)))
            assert result.returncode == 0, (fmt, result.stderr)
            assert result.stdout.splitlines() == summary_lines(*EXPECTED[fmt]), (fmt, result.stdout)
            total += EXPECTED[fmt][0]
        assert run.wait_events_applied(total)
        counts = run.activity("900201777")
        # Canvas events at 23:41Z (BST) and 01:20Z (GMT, the download twice), and a PC logon at
        # 23:52Z: all on local 25 October.
        assert counts[("2026-10-25", "vle")] == 2
        assert counts[("2026-10-25", "pc_logon")] == 1
        assert search_topics(run, secrets) == []
        # The CLI's dead letters are counted by the service, which reads them off the topic.
        expected = [
            f'lde_dead_letters_total{{topic="cli:{fmt}"}} {float(counts[3])}'
            for fmt, counts in EXPECTED.items()
            if counts[3]
        ]
        assert wait_until(lambda: all(line in run.client.text("/metrics") for line in expected), 30), expected
    finally:
        assert run.stop() == 0

    assert_stored_nowhere(run.settings, secrets)
