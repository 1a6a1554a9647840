"""Weekly and student reports, staff loading and the anonymised export through the `lde` commands on
real chDB, and their failure paths (bad staff rows, SMTP down, unknown staff, bad week)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from models.groups import compared_with
from ops import cli
from ops.jobs.reports.weekly import ReportJob, SmtpDelivery
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.mail import SmtpMailer
from tests.integration import report_data
from tests.integration.mailhelpers import pdf_text, smtp_server

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=tmp_path)))
    clickhouse.migrate(store.client)
    report_data.seed(store)
    store.insert(
        "trend_weekly",
        [
            (date(2026, 11, 9), "BSC-CS", 1, "FT", "S", "vle", 10, 205, 17.1, datetime.now(UTC)),
            (date(2026, 11, 9), "BSC-PSY", 2, "FT", "S", "vle", 5, 15, None, datetime.now(UTC)),
        ],
        clickhouse.TREND_COLUMNS,
    )
    store.close()
    monkeypatch.setenv("LDE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LDE_WEB_PORT", "9")  # no service: commands open chDB themselves
    yield tmp_path


def audit(data_dir: Path) -> list[tuple[object, ...]]:
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        return store.audit_rows()
    finally:
        store.close()


def test_weekly_reports_into_a_folder(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert cli.main(["report", "weekly", "--week", "2026-W47", "--staff", "S1042", "--out", str(out)]) == 0
    assert "1 of 1 written" in capsys.readouterr().out
    files = sorted(p.name for p in (out / "2026-W47").iterdir())
    assert files == ["S1042.html", "S1042.pdf", "S1042.txt"]
    text = (out / "2026-W47" / "S1042.txt").read_text()
    # most worrying first: Liam (silent, band None) before Carys
    assert text.index("Liam Doyle") < text.index("Carys Khan")
    assert "For Dr Helen Park (S1042), personal tutor of their tutees" in text
    html = (out / "2026-W47" / "S1042.html").read_text()
    assert "<svg" not in html and "<script" not in html and 'bgcolor="#2b5fab"' in html
    assert "Liam Doyle" in pdf_text((out / "2026-W47" / "S1042.pdf").read_bytes())
    assert [r[1:4] for r in audit(data_dir)] == [("S1042", "weekly_report", "folder")]


def test_report_failures_are_clear(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "weekly", "--week", "2026-W60", "--out", str(tmp_path)]) == 2
    assert "2026 has no week 60" in capsys.readouterr().err
    assert (
        cli.main(["report", "weekly", "--week", "2026-W47", "--staff", "S0000", "--out", str(tmp_path)]) == 2
    )
    assert "no staff member 'S0000'" in capsys.readouterr().err
    assert cli.main(["report", "weekly", "--week", "2026-W47"]) == 2
    assert "--out DIR, or --send" in capsys.readouterr().err


def test_smtp_down_is_retried_then_reported(data_dir: Path) -> None:
    from ops.devtools.replay import free_port

    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        mailer = SmtpMailer("127.0.0.1", free_port(), "none", timeout=2)
        run = ReportJob(store, Settings(data_dir=data_dir), retry_delays=(0.01,)).run(
            report_data.WEEK, SmtpDelivery(mailer, "lde@example.ac.uk"), ["S1042", "S3301"]
        )
        assert run.delivered == 0 and set(run.failures) == {"S1042", "S3301"}
        assert "is unreachable" in run.failures["S1042"] and "LDE_SMTP_HOST" in run.failures["S1042"]
        assert store.audit_rows() == []  # nothing was read by anyone
        with smtp_server() as (inbox, port):
            ok = ReportJob(store, Settings(data_dir=data_dir)).run(
                report_data.WEEK,
                SmtpDelivery(SmtpMailer("127.0.0.1", port, "none"), "lde@example.ac.uk"),
                ["S3301"],
            )
        assert ok.delivered == 1 and [rcpt for rcpt, _ in inbox.messages] == [["g.adeyemi@example.ac.uk"]]
    finally:
        store.close()


def test_staff_load_refuses_a_file_with_a_bad_row(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "staff.csv"
    bad.write_text(
        "staff_id,name,email,role,scope\nS1,Dr A,a@x.ac.uk,personal_tutor,tutees\n"
        "S2,Dr B,b@x.ac.uk,programme_leader,BSC-CS\n"
    )
    assert cli.main(["staff", "load", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "programme:NAME" in err and "nothing loaded" in err
    # the directory is unchanged: S1 was not loaded, the sample staff still are
    assert cli.main(["student", "show", "900412771", "--as", "S1"]) == 2
    assert cli.main(["student", "show", "900412771", "--as", "S1042"]) == 0
    good = tmp_path / "good.csv"
    good.write_text("staff_id,name,email,role,scope\nS1,Dr A,a@x.ac.uk,personal_tutor,tutees\n")
    capsys.readouterr()
    assert cli.main(["staff", "load", str(good)]) == 0
    assert "1 members with 1 roles loaded" in capsys.readouterr().out
    # a full replacement: S1042 is no longer staff
    assert cli.main(["student", "show", "900412771", "--as", "S1042"]) == 2


def test_student_report_and_anonymised_export(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "student", "900201777", "--week", "2026-W47", "--as", "S2210"]) == 3
    capsys.readouterr()
    out = tmp_path / "student"
    assert (
        cli.main(["report", "student", "900201777", "--week", "2026-W47", "--as", "S1042", "--out", str(out)])
        == 0
    )
    text = (out / "lde-student-900201777-2026-W47.txt").read_text()
    assert "Liam Doyle" in text and compared_with("cohort", 12) in text
    assert "Carys" not in text and "900412771" not in text
    assert (out / "lde-student-900201777-2026-W47.pdf").read_bytes().startswith(b"%PDF")

    export = tmp_path / "export.csv"
    assert (
        cli.main(["export", "anonymised", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(export)])
        == 0
    )
    rows = list(csv.DictReader(export.open()))
    assert [(r["week"], r["programme_code"], r["mean_events"]) for r in rows] == [
        ("2026-W46", "BSC-CS", "17.1"),
        ("2026-W46", "BSC-PSY", ""),  # 7 or fewer students: suppressed
    ]
    assert all(int(r["students_rounded"]) % 5 == 0 and int(r["events_rounded"]) % 5 == 0 for r in rows)
    content = export.read_text()
    for sid, name in [("900201777", "Liam"), ("900412771", "Carys"), ("S1042", "Park")]:
        assert sid not in content and name not in content
    actions = [(r[1], r[2], r[3]) for r in audit(data_dir)]
    assert ("S1042", "student_report", "cli") in actions
    assert ("operator", "export_anonymised", "cli") in actions
