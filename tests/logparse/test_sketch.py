"""The mergeable quantile sketch: within 1% of the exact percentile, and merging is exact."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logparse

durations = st.lists(
    st.floats(min_value=0.001, max_value=1e7, allow_nan=False, allow_infinity=False), min_size=1, max_size=300
)
quantiles = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])


def sketch_of(values: list[float]) -> logparse.Sketch:
    s = logparse.Sketch()
    s.extend(values)
    return s


def exact_percentile(values: list[float], q: float) -> float:
    """The independent reference: linear interpolation at rank q*(n-1), written out."""
    v = sorted(values)
    rank = q * (len(v) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return v[lo] + (v[hi] - v[lo]) * (rank - lo)


@settings(max_examples=300, deadline=None)
@given(values=durations, q=quantiles)
def test_quantile_within_relative_error_of_exact(values: list[float], q: float) -> None:
    exact = exact_percentile(values, q)
    got = sketch_of(values).quantile(q)
    assert abs(got - exact) <= logparse.RELATIVE_ACCURACY * exact + 1e-9


@settings(max_examples=300, deadline=None)
@given(a=durations, b=durations)
def test_merge_equals_one_sketch_over_both(a: list[float], b: list[float]) -> None:
    merged = logparse.merge_sketches(sketch_of(a).to_bytes(), sketch_of(b).to_bytes())
    assert merged == sketch_of(a + b).to_bytes()


@settings(max_examples=100, deadline=None)
@given(groups=st.lists(st.lists(st.one_of(st.none(), durations), max_size=6), max_size=8))
def test_merge_sketch_groups_equals_one_sketch_per_group(groups: list[list[list[float] | None]]) -> None:
    """The batch merge the stats API and the analyzer's flush use: None skipped, a group without sketches is None."""
    encoded = [[None if g is None else sketch_of(g).to_bytes() for g in group] for group in groups]
    expected = [
        sketch_of([v for g in group if g is not None for v in g]).to_bytes() if any(g is not None for g in group)
        else None
        for group in groups
    ]  # fmt: skip
    assert logparse.merge_sketch_groups(encoded) == expected


@given(values=durations)
def test_bytes_round_trip(values: list[float]) -> None:
    s = sketch_of(values)
    again = logparse.Sketch.from_bytes(s.to_bytes())
    assert again.to_bytes() == s.to_bytes()
    assert (again.count, again.min, again.max) == (len(values), min(values), max(values))


def test_zero_durations_and_empty_sketch() -> None:
    s = sketch_of([0.0, 0.0, 5.0])
    assert s.quantile(0.5) == 0.0
    assert s.quantile(1.0) == pytest.approx(5.0, rel=0.01)
    assert math.isnan(logparse.Sketch().quantile(0.5))
    assert math.isnan(logparse.sketch_quantiles(logparse.Sketch().to_bytes(), [0.5])[0])


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x02" + bytes(40), b"not a sketch at all"])
def test_garbage_bytes_raise_value_error(garbage: bytes) -> None:
    with pytest.raises(ValueError, match="invalid sketch"):
        logparse.merge_sketches(garbage, logparse.Sketch().to_bytes())
    with pytest.raises(ValueError, match="invalid sketch"):
        logparse.Sketch.from_bytes(garbage)
    with pytest.raises(ValueError, match="invalid sketch"):
        logparse.merge_sketch_groups([[logparse.Sketch().to_bytes()], [garbage]])
    with pytest.raises(ValueError, match="invalid sketch"):
        logparse.merge_sketch_groups([[garbage]])  # a lone sketch is checked too, not passed through


def test_quantile_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="not in"):
        logparse.sketch_quantiles(logparse.Sketch().to_bytes(), [1.5])
