"""The engagement model: window features, benchmarks and fallback, score and band, comparative rules."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.activity import ROW_WIDTH, StudentActivity
from models.comparative_rules import (
    LOW_ATTENDANCE,
    LOW_ENGAGEMENT,
    NO_ENGAGEMENT,
    attendance_totals,
    consecutive_days,
    escalates,
    half_attendance_chance,
    low_attendance,
    low_engagement,
    low_in_week_before,
    low_run_raises,
    re_engaged,
    run_far_below,
)
from models.comparison import (
    GroupStats,
    Member,
    SourceStats,
    StudentBenchmark,
    benchmark_day,
    percentile_rank,
    quantile,
    share_below,
)
from models.engagement import (
    Band,
    BandThresholds,
    Weights,
    WindowFeatures,
    band,
    score,
    student_features,
    window_days,
)
from models.explanations import (
    _round,
    _round_decimal,
    explain,
    explain_low_attendance,
    explain_low_engagement,
)

COHORT = ("BSC-CS", 1, "FT")


def feats(vle: int = 0, attended: int = 0, expected: int = 0, **others: int) -> WindowFeatures:
    return WindowFeatures.of(vle=vle, attendance=expected, attended=attended, **others)


def members(
    rows: list[WindowFeatures], cohort: tuple[str, int, str] = COHORT, prefix: str = "s"
) -> list[Member]:
    return [Member(f"{prefix}{i}", cohort, "Computing", f) for i, f in enumerate(rows)]


#: Eight students, hand-computed below: VLE counts and attended of 4 expected sessions.
TABLE = [
    feats(vle=0, attended=4, expected=4),
    feats(vle=1, attended=4, expected=4),
    feats(vle=1, attended=4, expected=4),
    feats(vle=3, attended=4, expected=4),
    feats(vle=3, attended=2, expected=4),
    feats(vle=3, attended=2, expected=4),
    feats(vle=5, attended=2, expected=4),
    feats(vle=10, attended=0, expected=4),
]


# -- features ----------------------------------------------------------------------------------------
def test_window_is_7_days_full_time_and_21_part_time() -> None:
    assert window_days("FT") == 7
    assert window_days("PT") == 21
    assert window_days("PT", full_time=5, part_time=14) == 14


def test_features_sum_the_window_and_rate_attendance() -> None:
    row = [0] * ROW_WIDTH
    row[0], row[6], row[7] = 3, 2, 1  # 3 VLE events, 2 sessions expected, 1 attended
    activity = StudentActivity(days={100: list(row), 94: list(row), 93: list(row)})
    features = student_features(activity, last_day=100, length=7)
    assert features.count("vle") == 6
    assert (features.attended, features.expected) == (2, 4)
    assert features.attendance_rate == 0.5
    assert features.has_activity
    empty = student_features(None, 100, 21)
    assert empty.attendance_rate is None
    assert not empty.has_activity
    assert empty.window_days == 21


def test_expected_sessions_without_attending_is_no_activity() -> None:
    assert not feats(expected=3).has_activity
    assert feats(expected=3, attended=1).has_activity


# -- statistics --------------------------------------------------------------------------------------
def test_percentile_ranks_use_mid_ranks_for_ties() -> None:
    values = [0.0, 1.0, 1.0, 3.0]
    assert [percentile_rank(values, v) for v in values] == [12.5, 50.0, 50.0, 87.5]
    assert percentile_rank([5.0, 5.0, 5.0], 5.0) == 50.0
    assert share_below(values, 1.0) == 0.25
    assert share_below(values, 0.0) == 0.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4], (1.75, 2.5, 3.25)),
        ([1, 2, 3, 4, 5], (2.0, 3.0, 4.0)),
        ([7], (7.0, 7.0, 7.0)),
        ([0, 0, 0, 10], (0.0, 0.0, 2.5)),
    ],
)
def test_quartiles_on_small_lists(values: list[float], expected: tuple[float, float, float]) -> None:
    assert (quantile(values, 0.25), quantile(values, 0.5), quantile(values, 0.75)) == expected


def test_source_stats_of_nothing_and_of_zeros() -> None:
    assert SourceStats.of([]) == SourceStats(0, None, None, None, None, False)
    assert SourceStats.of([0, 0]) == SourceStats(2, 0.0, 0.0, 0.0, 0.0, False)


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40))
def test_mid_ranks_always_average_fifty(values: list[int]) -> None:
    ordered = sorted(float(v) for v in values)
    ranks = [percentile_rank(ordered, v) for v in ordered]
    assert sum(ranks) / len(ranks) == pytest.approx(50.0)
    assert all(0 < r < 100 for r in ranks)


# -- benchmarks --------------------------------------------------------------------------------------
def test_benchmark_percentiles_and_stats_on_a_hand_computed_table() -> None:
    result = benchmark_day(members(TABLE))
    vle = [result[f"s{i}"].percentiles["vle"] for i in range(8)]
    assert vle == [6.25, 25.0, 25.0, 56.25, 56.25, 56.25, 81.25, 93.75]
    attendance = [result[f"s{i}"].percentiles["attendance"] for i in range(8)]
    assert attendance == [75.0, 75.0, 75.0, 75.0, 31.25, 31.25, 31.25, 6.25]
    assert result["s0"].percentiles["library"] is None  # nobody borrowed: not compared
    group = result["s0"].group
    assert (group.basis, group.key, group.n) == ("cohort", COHORT, 8)
    assert group.sources["vle"] == SourceStats(8, 3.25, 3.0, 1.0, 3.5, True)
    assert group.sources["attendance"].mean == 0.6875
    assert group.in_use == frozenset({"vle", "attendance"})
    # Activity index: VLE / 3.25 weighted 2, attendance rate / 0.6875 weighted 3.
    assert result["s0"].activity_index == pytest.approx((3 * 1 / 0.6875) / 5)


def test_small_cohort_falls_back_to_programme() -> None:
    year1 = members([feats(vle=10)] * 8, ("P", 1, "FT"), "a")
    year2 = members([feats(vle=4)] * 3, ("P", 2, "FT"), "b")
    result = benchmark_day(year1 + year2)
    assert (result["a0"].basis, result["a0"].group.n) == ("cohort", 8)
    assert (result["b0"].basis, result["b0"].group.key, result["b0"].group.n) == ("programme", ("P",), 11)
    assert result["b0"].group.sources["vle"].mean == pytest.approx(92 / 11)
    assert result["b0"].percentiles["vle"] == pytest.approx(100 * 1.5 / 11)


def test_small_groups_fall_back_to_the_next_level_up_to_the_institution() -> None:
    big = members([feats(vle=10)] * 8, ("P", 1, "FT"), "a")
    small = members([feats(vle=2)] * 5, ("Q", 1, "PT"), "q")
    lonely = [Member("z0", ("R", 1, "FT"), "Art", feats(vle=1))]
    result = benchmark_day(big + small + lonely)
    assert (result["q0"].basis, result["q0"].group.key, result["q0"].group.n) == (
        "school",
        ("Computing",),
        13,
    )
    # Issue 24.6: a school of one is compared with the institution, not left without a comparison.
    assert (result["z0"].basis, result["z0"].group.key, result["z0"].group.n) == ("institution", (), 14)
    assert result["a0"].basis == "cohort"


def test_an_institution_too_small_to_compare_is_the_only_no_comparison() -> None:
    tiny = [
        *members([feats(vle=10)] * 5, ("P", 1, "FT"), "a"),
        Member("z0", ("R", 1, "FT"), "Art", feats(vle=1)),
    ]
    result = benchmark_day(tiny)
    assert (result["z0"].basis, result["z0"].group.n) == ("institution", 6)
    decision = low_engagement(result["z0"])
    assert not decision.holds and decision.reason == "comparison group too small"


def test_min_cohort_size_is_a_parameter() -> None:
    result = benchmark_day(members([feats(vle=1)] * 3), min_cohort_size=3)
    assert result["s0"].basis == "cohort"


def test_empty_and_all_zero_cohorts() -> None:
    assert benchmark_day([]) == {}
    result = benchmark_day(members([feats()] * 8))
    bench = result["s3"]
    assert all(rank is None for rank in bench.percentiles.values())
    assert (bench.score, bench.band, bench.activity_index) == (0.0, Band.NONE, 0.0)
    assert bench.overall_percentile == 50.0
    assert bench.group.index.median == 0.0
    assert not low_engagement(bench).holds


# -- score and band ----------------------------------------------------------------------------------
def test_score_is_the_weighted_mean_of_percentiles() -> None:
    result = benchmark_day(members(TABLE))
    assert result["s0"].score == (2 * 6.25 + 3 * 75) / 5 == 47.5
    assert result["s3"].score == 67.5
    assert result["s7"].score == 41.25
    assert [result[f"s{i}"].band for i in (0, 3, 7)] == [Band.PARTIAL, Band.GOOD, Band.PARTIAL]
    equal = benchmark_day(members(TABLE), weights=Weights(vle=1, attendance=1))
    assert equal["s0"].score == 40.625


def test_a_source_nobody_uses_is_left_out_not_counted_as_zero() -> None:
    assert score({"vle": 80.0, "library": None, "attendance": 40.0}, Weights()) == 56.0
    assert score({"library": None}, Weights()) is None
    one_borrower = list(TABLE)
    one_borrower[3] = feats(vle=3, attended=4, expected=4, library=1)
    result = benchmark_day(members(one_borrower))
    assert result["s0"].percentiles["library"] == 43.75
    assert result["s0"].score == (2 * 6.25 + 1 * 43.75 + 3 * 75) / 6


def test_band_none_means_no_activity_whatever_the_percentile() -> None:
    assert band(95.0, has_activity=False) is Band.NONE
    rows = [*TABLE[:7], feats(expected=4)]  # the last student was expected at 4 sessions, did nothing
    bench = benchmark_day(members(rows))["s7"]
    assert (bench.band, bench.score) == (Band.NONE, 0.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100.0, Band.HIGH),
        (80.0, Band.HIGH),
        (79.9, Band.GOOD),
        (60.0, Band.GOOD),
        (59.9, Band.PARTIAL),
        (40.0, Band.PARTIAL),
        (39.9, Band.LOW),
        (0.0, Band.LOW),
    ],
)
def test_band_thresholds(value: float, expected: Band) -> None:
    assert band(value, has_activity=True) is expected


def test_band_thresholds_are_configurable_and_checked() -> None:
    assert band(50.0, True, BandThresholds(high=90, good=70, partial=50)) is Band.PARTIAL
    with pytest.raises(ValueError):
        BandThresholds(high=50, good=60, partial=40)
    with pytest.raises(ValueError):
        Weights(vle=-1)


# -- low engagement ----------------------------------------------------------------------------------
def test_low_engagement_holds_for_a_student_far_below_the_group() -> None:
    rows = [feats(vle=40 + i, attended=4, expected=4) for i in range(9)] + [
        feats(vle=2, attended=1, expected=4)
    ]
    result = benchmark_day(members(rows))
    decision = low_engagement(result["s9"])
    assert decision.holds
    assert (decision.below, decision.basis, decision.group_size) == (0.0, "cohort", 10)
    assert decision.activity_index < 0.5 * decision.group_median_index
    assert [s for s, b in result.items() if low_engagement(b).holds] == ["s9"]


def test_healthy_cohort_of_similar_students_flags_nobody() -> None:
    rows = [feats(vle=38 + i, attended=3 + i % 2, expected=4) for i in range(10)]
    result = benchmark_day(members(rows))
    lowest = result["s0"]
    assert lowest.below == 0.0  # someone is always at the bottom...
    assert not low_engagement(lowest).holds  # ...but not far below the middle
    assert not any(low_engagement(b).holds for b in result.values())


@given(st.lists(st.integers(min_value=20, max_value=39), min_size=8, max_size=30))
def test_no_one_is_flagged_when_everyone_does_within_double_of_each_other(vle: list[int]) -> None:
    result = benchmark_day(members([feats(vle=v) for v in vle]))
    assert not any(low_engagement(b).holds for b in result.values())


def test_low_engagement_not_in_tiny_groups_nor_for_the_inactive() -> None:
    rows = [feats(vle=40)] * 4 + [feats(vle=1)]
    small = benchmark_day(members(rows))["s4"]
    assert not low_engagement(small).holds
    assert low_engagement(small, min_group_size=5).holds
    silent = benchmark_day(members([feats(vle=40)] * 9 + [feats()]))["s9"]
    assert not low_engagement(silent).holds
    assert low_engagement(silent, skip_inactive=False).holds


def test_far_below_is_a_low_day_under_the_alert_line() -> None:
    # Nine students at 40 VLE events; the tenth at 18 (45% of typical) or 12 (30%): both are low days
    # (bottom 10% and under half), only the second is under the alert line (35% by default).
    for vle, far in ((18, False), (12, True)):
        bench = benchmark_day(members([feats(vle=40)] * 9 + [feats(vle=vle)]))["s9"]
        decision = low_engagement(bench)
        assert decision.holds
        assert decision.far_below is far
        assert decision.activity_index / decision.group_median_index == pytest.approx(vle / 40)
    # The line is a setting: at 0.5 every low day is under it, at 0.25 not even 30% is.
    bench = benchmark_day(members([feats(vle=40)] * 9 + [feats(vle=12)]))["s9"]
    assert low_engagement(bench, alert_fraction=0.5).far_below
    assert not low_engagement(bench, alert_fraction=0.25).far_below


def test_far_below_needs_a_low_day() -> None:
    # Under the line but in a group too small to compare, or with no activity: not a low day at all.
    small = benchmark_day(members([feats(vle=40)] * 4 + [feats(vle=1)]))["s4"]
    assert not low_engagement(small).holds and not low_engagement(small).far_below
    silent = benchmark_day(members([feats(vle=40)] * 9 + [feats()]))["s9"]
    assert not low_engagement(silent).far_below
    # Not in the bottom 10%: two students far below the others share the bottom, neither under 10%.
    pair = benchmark_day(members([feats(vle=40)] * 8 + [feats(vle=2), feats(vle=2)]))
    assert pair["s8"].below == 0.0 and low_engagement(pair["s8"]).far_below
    three = benchmark_day(members([feats(vle=40)] * 7 + [feats(vle=1), feats(vle=2), feats(vle=3)]))
    assert three["s9"].below >= 0.1 and not low_engagement(three["s9"]).far_below


@pytest.mark.parametrize(
    ("count", "today", "before", "expected"),
    [
        (0, True, True, False),  # no run: nothing to remember
        (1, True, False, True),  # the run starts under the line
        (1, False, True, False),  # a new run forgets the last one
        (2, False, True, True),  # the run fell under the line on an earlier day
        (4, False, False, False),  # under half every day, never under the line
        (4, True, False, True),
    ],
)
def test_a_run_is_far_below_once_any_day_of_it_is(
    count: int, today: bool, before: bool, expected: bool
) -> None:
    assert run_far_below(count, today, before) is expected


def test_consecutive_days_raise_on_the_kth_day_only_and_reset_on_a_good_day() -> None:
    count = 0
    counts, raises = [], []
    for holds in [True, True, True, True, False, True, True, True]:
        count, raise_now = consecutive_days(count, holds, k=3)
        counts.append(count)
        raises.append(raise_now)
    assert counts == [1, 2, 3, 4, 0, 1, 2, 3]
    assert raises == [False, False, True, False, False, False, False, True]


# -- low attendance ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attended", "expected", "holds"),
    [(2, 4, False), (1, 4, True), (1, 3, False), (0, 3, False), (0, 4, True), (0, 0, False), (3, 7, True)],
)
def test_low_attendance_boundaries_of_the_plain_rate_test(attended: int, expected: int, holds: bool) -> None:
    assert low_attendance(attended, expected, max_chance=1.0).holds is holds


@pytest.mark.parametrize(
    ("attended", "expected", "holds"),
    [
        (1, 4, False),  # 5/16: a student attending half their sessions does this 31% of the time
        (0, 4, True),  # 1/16
        (1, 5, True),  # 6/32
        (2, 7, False),  # 29/128, just over 1 in 5
        (1, 7, True),  # 8/128
        (3, 10, True),  # 176/1024
        (4, 10, False),  # 386/1024
        (2, 4, False),
        (0, 3, False),
    ],
)
def test_low_attendance_needs_a_shortfall_beyond_chance(attended: int, expected: int, holds: bool) -> None:
    assert low_attendance(attended, expected).holds is holds


def test_half_attendance_chance_is_the_binomial_tail() -> None:
    assert half_attendance_chance(1, 4) == 5 / 16
    assert half_attendance_chance(0, 4) == 1 / 16
    assert half_attendance_chance(3, 10) == 176 / 1024
    assert half_attendance_chance(4, 4) == 1.0
    assert half_attendance_chance(0, 0) == 1.0
    # 1 of 4 under half, not enough evidence to raise, and not attendance recovered either.
    decision = low_attendance(1, 4)
    assert (decision.holds, decision.under_threshold, decision.recovered) == (False, True, False)


def test_attendance_totals_cover_the_last_14_days() -> None:
    row = [0] * ROW_WIDTH
    row[6], row[7] = 2, 1
    activity = StudentActivity(days={200: list(row), 187: list(row), 186: list(row)})
    assert attendance_totals(activity, 200) == (2, 4)
    assert attendance_totals(None, 200) == (0, 0)
    decision = low_attendance(*attendance_totals(activity, 200))
    assert (decision.holds, decision.rate, decision.enough_sessions) == (False, 0.5, True)


# -- closing the loop and escalation -----------------------------------------------------------------
def test_re_engagement_closes_episodes() -> None:
    assert re_engaged(NO_ENGAGEMENT, has_activity=True).closes
    assert not re_engaged(NO_ENGAGEMENT, has_activity=False).closes
    assert re_engaged(LOW_ENGAGEMENT, has_activity=True, score=40.0).closes
    assert not re_engaged(LOW_ENGAGEMENT, has_activity=True, score=39.9).closes
    assert not re_engaged(LOW_ENGAGEMENT, has_activity=False, score=90.0).closes
    assert re_engaged(LOW_ATTENDANCE, has_activity=True, attendance=low_attendance(2, 4)).closes
    assert not re_engaged(LOW_ATTENDANCE, has_activity=True, attendance=low_attendance(2, 3)).closes
    assert not re_engaged(LOW_ATTENDANCE, has_activity=True, attendance=low_attendance(1, 4)).closes
    with pytest.raises(ValueError):
        re_engaged("made_up", has_activity=True)


def test_escalation_after_14_days_once() -> None:
    raised = date(2026, 10, 1)
    assert not escalates(raised, date(2026, 10, 14), already_escalated=False)
    assert escalates(raised, date(2026, 10, 15), already_escalated=False)
    assert not escalates(raised, date(2026, 10, 16), already_escalated=True)
    assert escalates(raised, date(2026, 10, 16), already_escalated=False)  # catch-up after a missed day


# -- explanations ------------------------------------------------------------------------------------
def _programme_bench() -> StudentBenchmark:
    unused = SourceStats(23, 0.0, 0.0, 0.0, 0.0, False)
    sources = {s: unused for s in ("library", "eresource", "print", "pc_logon", "remote")}
    sources["vle"] = SourceStats(23, 41.0, 40.0, 30.0, 50.0, True)
    sources["attendance"] = SourceStats(23, 0.84, 0.8, 0.75, 1.0, True)
    group = GroupStats("programme", ("BSC-CS",), 23, sources, SourceStats(23, 1.0, 1.0, 0.8, 1.2, True))
    return StudentBenchmark(
        student_id="s1",
        features=feats(vle=3, attended=1, expected=5),
        group=group,
        percentiles={"vle": 2.2, "attendance": 4.3},
        activity_index=0.1,
        overall_percentile=2.2,
        below=0.0,
        score=3.5,
        band=Band.LOW,
    )


def test_explanation_text_and_fields_carry_the_figures() -> None:
    explanation = explain(_programme_bench())
    assert explanation.text == (
        "VLE activity 3 events in the last 7 days against a programme average of 41; "
        "attendance 1 of 5 sessions (20%) against 84%."
    )
    fields = explanation.fields
    assert (fields["vle_count"], fields["vle_average"], fields["vle_percentile"]) == (3, 41.0, 2.2)
    assert (fields["attended"], fields["expected"], fields["attendance_rate"]) == (1, 5, 20.0)
    assert (fields["attendance_average"], fields["basis"], fields["group_size"]) == (84.0, "programme", 23)
    assert (fields["band"], fields["score"], fields["window_days"]) == ("Low", 3.5, 7)
    assert "library_count" not in fields


def test_explanation_from_a_real_benchmark() -> None:
    bench = benchmark_day(members(TABLE))["s4"]
    assert explain(bench).text == (
        "VLE activity 3 events in the last 7 days against a cohort average of 3.3; "
        "attendance 2 of 4 sessions (50%) against 69%."
    )
    assert explain(bench).fields["vle_average"] == 3.3
    rates = benchmark_day(members([feats(vle=1, attended=57, expected=200)] * 8))["s0"]
    assert explain(rates).text.endswith("attendance 57 of 200 sessions (29%) against 29%.")  # 28.5% up
    silent = benchmark_day(members([feats()] * 8))["s0"]
    assert explain(silent).text == "No activity recorded in the last 7 days."


def test_low_engagement_and_low_attendance_alert_texts() -> None:
    bench = _programme_bench()
    decision = low_engagement(bench, min_group_size=1)
    assert decision.holds
    text = explain_low_engagement(decision, bench, days_in_a_row=3)
    assert text.text.startswith(
        "Among the least engaged students of the programme (23 students) for 3 days in a row, "
        "with 10% of the typical student's activity. VLE activity 3 events"
    )
    assert text.fields["days_in_a_row"] == 3
    attendance = explain_low_attendance(low_attendance(1, 5), group_rate=0.84, basis="cohort")
    assert attendance.text == (
        "Attended 1 of 5 expected sessions (20%) in the last 14 days, against a cohort average of 84%."
    )  # the group named in the words of every page and report (issue 27)
    unnamed = explain_low_attendance(low_attendance(1, 5), group_rate=0.84)
    assert unnamed.text.endswith("against 84% for comparable students.")
    assert attendance.fields == {
        "attended": 1,
        "expected": 5,
        "attendance_rate": 20.0,
        "attendance_average": 84.0,
        "days": 14,
    }


def test_low_runs_raise_once_confirmed_by_the_week_before() -> None:
    day = date(2026, 10, 20)
    assert low_in_week_before([day - timedelta(days=7)], day)
    assert low_in_week_before([day - timedelta(days=13)], day)
    assert not low_in_week_before([day - timedelta(days=6), day - timedelta(days=14)], day)
    # Without the check (always confirmed) a run raises on exactly its K-th day.
    assert [low_run_raises(c, 3, True, True) for c in range(1, 6)] == [False, False, True, False, False]
    # With it, on the first day the run is K long and confirmed, and only then.
    assert low_run_raises(3, 3, True, False) and low_run_raises(8, 3, True, False)
    assert not low_run_raises(9, 3, True, True)
    assert not low_run_raises(2, 3, True, False)
    assert not low_run_raises(5, 3, False, False)


@given(
    st.one_of(
        st.floats(min_value=0, max_value=1e7, allow_nan=False),
        st.builds(lambda n, d: n / d, st.integers(0, 10**6), st.sampled_from([2, 3, 7, 16, 40, 200, 1000])),
        st.decimals(min_value=0, max_value=1000, places=3).map(float),
    ),
    st.sampled_from([(1, 1), (0, 100), (1, 100), (3, 1)]),
)
def test_fast_rounding_equals_rounding_the_decimal_text(value: float, how: tuple[int, int]) -> None:
    """Explanations round on the float except within a hair of a half: the same as the decimal text."""
    places, scale = how
    assert _round(value, places, scale) == _round_decimal(value, places, scale)
