"""The columnar benchmarks equal the reference (comparison.benchmark_day) exactly, on random days."""

import random

import numpy as np
import pytest

from models.activity import ATTENDANCE, N_SOURCES, NOT_OFFERED, StudentActivity
from models.activity_columns import ActivityColumns, day_figures
from models.benchmarks import GroupCodes, benchmark_columns
from models.comparative_rules import low_engagement
from models.comparison import Member, benchmark_day
from models.engagement import BandThresholds, Weights, WindowFeatures, student_features
from models.explanations import explain


def random_members(seed: int, n: int) -> list[Member]:
    """Students over programmes, years, modes and schools of very different sizes (some cohorts fall
    back to programme or school), with sparse, tied and zero counts and attendance of every kind."""
    rng = random.Random(seed)
    programmes = [(f"P{p}", f"School{p % 3}") for p in range(rng.randint(1, 6))]
    members = []
    for i in range(n):
        programme, school = rng.choice(programmes)
        cohort = (programme, rng.choice([1, 1, 1, 2, 3]), rng.choice(["FT", "FT", "PT"]))
        counts = [rng.choice([0, 0, 1, 2, 3, rng.randint(0, 60)]) for _ in range(N_SOURCES)]
        if rng.random() < 0.1:
            counts = [0] * N_SOURCES
        # Some sources not offered to some students (never to attendance: no session is its own case).
        counts = [
            NOT_OFFERED if c == 0 and s != ATTENDANCE and rng.random() < 0.3 else c
            for s, c in enumerate(counts)
        ]
        attended = rng.randint(0, counts[ATTENDANCE])
        window = 21 if cohort[2] == "PT" else 7
        members.append(Member(f"s{i}", cohort, school, WindowFeatures(tuple(counts), attended, window)))
    return members


@pytest.mark.parametrize("seed", range(12))
def test_columns_equal_the_reference_bit_for_bit(seed: int) -> None:
    members = random_members(seed, random.Random(seed).randint(1, 400))
    weights = Weights(library=0.0) if seed % 4 == 3 else Weights()
    thresholds = BandThresholds(high=70, good=50, partial=30) if seed % 3 == 2 else None
    minimum = [8, 3, 20][seed % 3]
    reference = benchmark_day(members, weights, minimum, thresholds)
    columns = benchmark_columns(
        [m.student_id for m in members],
        np.array([m.features.counts for m in members], np.int64).reshape(-1, N_SOURCES),
        np.array([m.features.attended for m in members], np.int64),
        np.array([m.features.window_days for m in members], np.int64),
        [m.cohort for m in members],
        [m.school for m in members],
        weights,
        minimum,
        thresholds,
    )
    holds = columns.low_engagement(0.1, 0.5, minimum)
    alert_line = [0.35, 0.25, 0.5][seed % 3]
    far_below = holds & columns.far_below(alert_line)
    for i, member in enumerate(members):
        expected = reference[member.student_id]
        assert columns.student(i) == expected
        decision = low_engagement(expected, 0.1, 0.5, minimum, alert_fraction=alert_line)
        assert bool(holds[i]) is decision.holds
        assert bool(far_below[i]) is decision.far_below


def test_no_members_gives_no_groups() -> None:
    empty = np.zeros((0, N_SOURCES), np.int64)
    columns = benchmark_columns([], empty, np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])
    assert columns.groups == []
    assert columns.low_engagement(0.1, 0.5, 8).size == 0


def test_activity_columns_equal_each_states_own_reads() -> None:
    rng = random.Random(5)
    states: list[StudentActivity | None] = []
    for _ in range(300):
        if rng.random() < 0.2:
            states.append(None)
            continue
        days = {
            700_000 + rng.randrange(40): [rng.choice([0, 0, 1, 4]) for _ in range(N_SOURCES + 1)]
            for _ in range(rng.randrange(12))
        }
        last = max(days) if days and rng.random() < 0.8 else (700_050 if rng.random() < 0.5 else None)
        states.append(StudentActivity(days=days, last_active=last))
    columns = ActivityColumns(states)
    lengths = np.array([rng.choice([7, 21]) for _ in states], np.int64)
    for day in (699_990, 700_010, 700_025, 700_045, 700_060):
        totals = columns.window_totals(day, lengths)
        last = columns.last_active_on_or_before(day)
        for i, state in enumerate(states):
            reference = student_features(state, day, int(lengths[i]))
            assert tuple(totals[i, :N_SOURCES]) == reference.counts
            assert totals[i, N_SOURCES] == reference.attended
            own = state.last_active_on_or_before(day) if state is not None else None
            assert last[i] == (-1 if own is None else own)


def test_day_figures_in_chunks_equal_the_whole() -> None:
    rng = random.Random(9)
    states: list[StudentActivity | None] = [
        None
        if rng.random() < 0.1
        else StudentActivity(
            days={
                700_000 + rng.randrange(30): [rng.randrange(3) for _ in range(N_SOURCES + 1)]
                for _ in range(5)
            },
            last_active=700_000 + rng.randrange(35),
        )
        for _ in range(500)
    ]
    lengths = np.array([rng.choice([7, 21]) for _ in states], np.int64)
    whole = ActivityColumns(states)
    for day in (700_012, 700_031):
        chunked = day_figures(states, day, lengths, 14, chunk=37)
        assert (chunked.window == whole.window_totals(day, lengths)).all()
        recent = whole.window_totals(day, np.full(len(states), 14, np.int64))
        assert (chunked.attended == recent[:, N_SOURCES]).all()
        assert (chunked.expected == recent[:, ATTENDANCE]).all()
        assert (chunked.last == whole.last_active_on_or_before(day)).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_group_codes_from_columns_equal_codes_from_cohort_tuples(seed: int) -> None:
    """The roster's fast coding gives the same codes and keys, in order of first appearance."""
    rng = random.Random(seed)
    n = rng.randint(1, 400)
    programmes = [f"P{rng.randint(0, 30)}" for _ in range(n)]
    years = [rng.randint(1, 4) for _ in range(n)]
    modes = [rng.choice(["full_time", "part_time"]) for _ in range(n)]
    schools = [f"School {rng.randint(0, 5)}" for _ in range(n)]
    slow = GroupCodes.of(list(zip(programmes, years, modes, strict=True)), schools)
    fast = GroupCodes.from_columns(programmes, years, modes, schools)
    assert fast.keys == slow.keys
    for level, codes in slow.codes.items():
        assert fast.codes[level].tolist() == codes.tolist()


def test_sources_unused_over_the_offered_days_read_not_offered_in_both_paths() -> None:
    rng = random.Random(11)
    states: list[StudentActivity | None] = [
        None
        if rng.random() < 0.1
        else StudentActivity(
            days={
                700_000 + rng.randrange(40): [rng.choice([0, 0, 0, 2]) for _ in range(N_SOURCES + 1)]
                for _ in range(4)
            },
            last_active=700_000 + rng.randrange(40),
        )
        for _ in range(300)
    ]
    lengths = np.array([rng.choice([7, 21]) for _ in states], np.int64)
    for day in (700_010, 700_030, 700_045):
        figures = day_figures(states, day, lengths, 14, chunk=53, offered_days=28)
        for i, state in enumerate(states):
            reference = student_features(state, day, int(lengths[i]), offered_days=28)
            assert tuple(figures.window[i, :N_SOURCES]) == reference.counts
        assert (figures.window[:, ATTENDANCE] >= 0).all()  # attendance: offered when sessions are expected
    assert (figures.window == NOT_OFFERED).any() and (figures.window > 0).any()


def test_a_source_not_offered_is_left_out_of_the_student_and_the_group() -> None:
    """Issue 24.4: above the cohort's VLE average with no timetable and no other source: not low."""
    others = [
        Member(
            f"s{i}",
            ("P", 1, "FT"),
            "S",
            WindowFeatures.of(vle=50, eresource=8, pc_logon=6, attendance=5, attended=5),
        )
        for i in range(9)
    ]
    vle_only = WindowFeatures((59, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, 0), 0, 7)
    bench = benchmark_day([*others, Member("v", ("P", 1, "FT"), "S", vle_only)])["v"]
    assert {name for name, rank in bench.percentiles.items() if rank is not None} == {"vle"}
    assert bench.activity_index > 1.0 and bench.score > 50
    assert not low_engagement(bench).holds
    assert bench.group.sources["eresource"].n == 9  # the group's figures are those offered it
    words = explain(bench)
    assert words.fields["sources_compared"] == ["vle"]
    assert words.fields["eresource_count"] is None and words.fields["vle_count"] == 59
    assert "-1" not in words.text
    assert words.text.endswith("Not counted, as not used in the last 28 days: e-resources, PC logons.")


def test_a_student_who_used_nothing_is_told_so_not_that_sources_were_left_out() -> None:
    """A never-engaged student: every source the group uses is unused; the words say what LDE saw."""
    others = [
        Member(f"s{i}", ("P", 1, "FT"), "S", WindowFeatures.of(vle=50, pc_logon=6, attendance=5, attended=5))
        for i in range(9)
    ]
    silent = WindowFeatures(
        (NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, NOT_OFFERED, 5), 0, 7
    )
    words = explain(benchmark_day([*others, Member("q", ("P", 1, "FT"), "S", silent)])["q"])
    assert "Not counted" not in words.text
    assert words.text.endswith("No use of VLE activity, PC logons in the last 28 days.")
    assert words.text.startswith("Attendance 0 of 5 sessions (0%)")
