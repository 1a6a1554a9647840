"""`python -m ops.devtools.bench --only X` merges into BENCHMARKS.md: its rows and run replaced, the rest
kept."""

from ops.devtools.bench.markdown import TABLE_HEADER, Row, merge_markdown

EXISTING = "\n".join(
    [
        "# Benchmarks",
        "",
        "Prose before the table.",
        "",
        *TABLE_HEADER,
        "| daily job | 53.2 s | < 300 s | yes | `python -m ops.devtools.bench --only job` |",
        "| pipeline, envelopes | not yet recorded | >= 50,000 | - | "
        "`python -m ops.devtools.bench --only pipeline` |",
        "| pipeline, single | not yet recorded | >= 70% | - | "
        "`python -m ops.devtools.bench --only pipeline` |",
        "| sink | 274,430 rows/s | - | - | `python -m ops.devtools.bench --only sink` |",
        "",
        "Prose after the table.",
        "",
        "## Where the time goes",
        "",
        "- the profile.",
        "",
    ]
)


def test_only_the_measured_sections_rows_are_replaced_in_place() -> None:
    rows = [
        Row("pipeline", "pipeline, envelopes", "60,000 events/s", "30x naive", ">= 50,000", True),
        Row("pipeline", "no-op agent", "8,000 messages/s"),
    ]
    merged = merge_markdown(EXISTING, rows, {"pipeline": ["2026-11-29, run", "a note"]})
    lines = merged.split("\n")
    table = lines[lines.index(TABLE_HEADER[0]) + 2 : lines.index(TABLE_HEADER[0]) + 6]
    assert table == [
        "| daily job | 53.2 s | < 300 s | yes | `python -m ops.devtools.bench --only job` |",
        "| pipeline, envelopes | 60,000 events/s (30x naive) | >= 50,000 | yes | "
        "`python -m ops.devtools.bench --only pipeline` |",
        "| no-op agent | 8,000 messages/s | - | - | `python -m ops.devtools.bench --only pipeline` |",
        "| sink | 274,430 rows/s | - | - | `python -m ops.devtools.bench --only sink` |",
    ]
    assert "not yet recorded" not in merged
    for kept in ("Prose before the table.", "Prose after the table.", "- the profile."):
        assert kept in merged
    assert merged.index("## Runs") < merged.index("## Where the time goes")
    assert "- **pipeline**: 2026-11-29, run\n  - a note" in merged


def test_a_second_section_keeps_the_firsts_rows_and_run() -> None:
    first = merge_markdown(EXISTING, [Row("pipeline", "p", "1")], {"pipeline": ["first run"]})
    second = merge_markdown(first, [Row("sink", "s", "2", "new")], {"sink": ["second run"]})
    assert "| p | 1 | - | - | `python -m ops.devtools.bench --only pipeline` |" in second
    assert "| s | 2 (new) | - | - | `python -m ops.devtools.bench --only sink` |" in second
    assert "274,430" not in second
    assert "- **pipeline**: first run\n- **sink**: second run" in second
    again = merge_markdown(second, [Row("pipeline", "p", "3")], {"pipeline": ["third run"]})
    assert "- **pipeline**: third run\n- **sink**: second run" in again
    assert again.count("## Runs") == 1 and "first run" not in again
    assert again.endswith("- the profile.\n")


def test_a_new_file_gets_the_preamble_table_and_runs() -> None:
    merged = merge_markdown(
        "", [Row("job", "daily job", "50 s", floor="< 300 s", met=False)], {"job": ["run"]}
    )
    assert merged.startswith("# Benchmarks\n")
    assert "| daily job | 50 s | < 300 s | **no** | `python -m ops.devtools.bench --only job` |" in merged
    assert merged.endswith("## Runs\n\n- **job**: run\n")
