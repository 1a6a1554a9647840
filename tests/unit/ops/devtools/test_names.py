"""The simulated university's names: distinct, from many backgrounds, some in their own script."""

from __future__ import annotations

from ops.devtools.names import BACKGROUNDS, WEIGHTS, distinct_names
from ops.devtools.simulator import simulate


def test_600_students_have_600_distinct_names_some_not_in_latin_script() -> None:
    sim = simulate(students=600, weeks=1, seed=7)
    names = [f"{s.record.given_name} {s.record.family_name}" for s in sim.students]
    assert len(set(names)) == 600
    beyond_latin1 = [name for name in names if name.encode("latin-1", "ignore").decode("latin-1") != name]
    assert beyond_latin1  # the PDFs embed Noto fonts for these
    assert sum(1 for name in names if not name.isascii()) >= 30  # accents and other scripts


def test_names_are_deterministic_and_keep_to_one_background() -> None:
    assert distinct_names(50, 3) == distinct_names(50, 3)
    assert distinct_names(50, 3) != distinct_names(50, 4)
    backgrounds = {(g, f): bg for bg, (gs, fs) in BACKGROUNDS.items() for g in gs for f in fs}
    assert all((g, f) in backgrounds for g, f in distinct_names(1200, 1))
    assert set(WEIGHTS) == set(BACKGROUNDS)


def test_past_the_pools_names_are_drawn_again_rather_than_failing() -> None:
    many = distinct_names(1500, 1)
    assert len(many) == 1500 and len(set(many)) == 1200
