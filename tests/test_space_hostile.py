"""Search spaces with hostile numbers: rejected at parse time, naming the parameter, or sampled
as finite legal values that round-trip through NNI parameters (issue #11)."""
from __future__ import annotations

import json
import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nni_gensynth.engine.generator import Generator
from nni_gensynth.engine.space import ALL_TYPES, NUMERIC_TYPES, SearchSpace, SearchSpaceError


def samples(space: SearchSpace, n: int, seed: int = 0, drift: float = 0.0) -> list:
    """n samples of a fresh θ_G (its numeric means moved by `drift` standard scores), and n
    neighbours of them: everything the engine can propose."""
    gen = Generator(space)
    for i, d in enumerate(space.all_decisions):
        if i in gen.mean and not d.bounded:
            gen.mean[i] += drift
    rng = np.random.default_rng(seed)
    rows = gen.sample_rows(n, rng)
    rows = np.vstack([rows, gen.mutate_rows(rows, rng, np.full(n, 2))])
    return [space.architecture(row) for row in rows]


def finite_numbers(value) -> bool:
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def assert_round_trips(space: SearchSpace, n: int = 200, drift: float = 0.0) -> None:
    for arch in samples(space, n, drift=drift):
        params = space.to_parameters(arch)
        assert finite_numbers(params), params
        text = json.dumps(params, allow_nan=False)
        assert space.from_parameters(params) == arch
        assert space.from_parameters(json.loads(text)) == arch  # as NNI sends them back


@pytest.mark.parametrize("spec, fragment", [
    ({"x": {"_type": "lognormal", "_value": [1000, 1]}}, "'x' (lognormal)"),  # exp overflowed on every draw
    ({"x": {"_type": "qlognormal", "_value": [1000, 1, 1]}}, "'x' (qlognormal)"),
    ({"x": {"_type": "lognormal", "_value": [-1000, 1]}}, "'x' (lognormal)"),  # drew 0.0, which it then rejected
    ({"x": {"_type": "lognormal", "_value": [0, 100]}}, "'x' (lognormal)"),
    ({"x": {"_type": "normal", "_value": [0, 1e308]}}, "'x' (normal)"),
    ({"x": {"_type": "qnormal", "_value": [1e308, 1e307, 1]}}, "'x' (qnormal)"),
    ({"x": {"_type": "qnormal", "_value": [0, 1, 5e-324]}}, "'x' (qnormal): q"),
    ({"x": {"_type": "quniform", "_value": [0, 1e308, 1e-300]}}, "'x' (quniform): q"),
    ({"x": {"_type": "quniform", "_value": [0, 1, 0]}}, "'x' (quniform): q must be positive"),
    ({"x": {"_type": "quniform", "_value": [0, 1, -1]}}, "'x' (quniform): q must be positive"),
    ({"x": {"_type": "quniform", "_value": [0, 1, float("nan")]}}, "'x': q must be a finite float"),
    ({"x": {"_type": "uniform", "_value": [0, 10**400]}}, "'x': upper bound"),  # isfinite(int) overflowed
    ({"x": {"_type": "uniform", "_value": [0, float("inf")]}}, "'x': upper bound"),
    ({"x": {"_type": "randint", "_value": [0, 1e300]}}, "'x' (randint)"),
    ({"x": {"_type": "randint", "_value": [0, 2**60]}}, "'x' (randint)"),
    ({"x": {"_type": "uniform", "_value": ["0", 1]}}, "'x': lower bound"),
    ({"x": {"_type": "uniform", "_value": [True, 1]}}, "'x': lower bound"),
    ({"x": {"_type": "choice", "_value": []}}, "'x' (choice) has no options"),
    ({"x": {"_type": "choice", "_value": [1, float("nan")]}}, "'x': option nan"),
    ({"x": {"_type": "choice", "_value": [1, {3}]}}, "'x': option {3}"),
    ({"x": {"_type": "choice", "_value": [1, object()]}}, "'x': option <object"),
    ({"x": {"_type": "choice", "_value": [[1, 2], [1, 2]]}}, "'x': option [1, 2] appears twice"),
    ({"x": {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "a"}]}}, "'x': option 'a' appears twice"),
    ({"x": {"_type": ["choice"], "_value": [1]}}, "'x' has unknown _type"),
    ({"x": {"_type": "choice", "_value": "abc"}}, "'x': _value must be a list"),
    ({3: {"_type": "choice", "_value": [1]}}, "parameter names must be strings, got 3"),
])
def test_unsampleable_spaces_are_rejected_naming_the_parameter(spec, fragment):
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace(spec)
    assert fragment in str(info.value)


def test_deeply_nested_choices_are_rejected_naming_the_path():
    spec = {"leaf": {"_type": "uniform", "_value": [0, 1]}}
    for level in range(40):
        spec = {f"c{level}": {"_type": "choice", "_value": [dict(spec, _name="n")]}}
    with pytest.raises(SearchSpaceError, match="'c39.0.c38.*' is nested more than 16 choices deep"):
        SearchSpace(spec)


def test_a_range_as_wide_as_the_floats_is_sampled_across():
    """The unit transform overflowed (hi - lo = inf): every proposal was 1e308."""
    space = SearchSpace({"x": {"_type": "uniform", "_value": [-1e308, 1e308]}})
    values = [space.to_parameters(a)["x"] for a in samples(space, 200)]
    assert min(values) < -1e307 and max(values) > 1e307
    assert_round_trips(space)


@pytest.mark.parametrize("spec", [
    {"x": {"_type": "qlognormal", "_value": [0, 1, 1]}},  # exp(z) < 0.5 rounds to 0: legal, and it used to be refused
    {"x": {"_type": "lognormal", "_value": [-700, 4]}},  # subnormal values: positive, finite
    {"x": {"_type": "lognormal", "_value": [700, 1]}},
    {"x": {"_type": "normal", "_value": [0, 1e300]}},
    {"x": {"_type": "qnormal", "_value": [1e300, 1e299, 1e-5]}},
    {"x": {"_type": "randint", "_value": [-2**53, 2**53]}},
    {"x": {"_type": "quniform", "_value": [-1e308, 1e308, 1e300]}},
    {"x": {"_type": "qloguniform", "_value": [5e-324, 1e8, 1e-300]}},
    {"x": {"_type": "choice", "_value": [1, 1.0, True, 0.0, -0.0, None, "1", [1], {"a": 1}]}},
])
def test_extreme_but_sampleable_spaces_round_trip(spec):
    space = SearchSpace(spec)
    assert_round_trips(space)
    assert_round_trips(space, drift=60.0)  # a θ_G that wandered far: standard scores are clipped


def test_qlognormal_proposes_zero_and_reads_it_back():
    space = SearchSpace({"x": {"_type": "qlognormal", "_value": [0, 1, 1]}})
    values = {space.to_parameters(a)["x"] for a in samples(space, 200)}
    assert 0.0 in values and all(v >= 0 for v in values)


# --- generated spaces -----------------------------------------------------------------------

extreme_numbers = st.one_of(
    st.floats(), st.integers(-10**400, 10**400), st.integers(-2**60, 2**60),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 1e-320, 2**53, 2**53 + 1, 709.0, -745.0, 88.0,
                     1000, -1000, 1e-300, 1e300]),
)
ordinary_numbers = st.one_of(st.floats(-100, 100), st.integers(-20, 20), st.floats(1e-6, 10))
# mostly parseable, often extreme: one number in six is drawn from the extremes
numbers = st.integers(0, 5).flatmap(lambda i: extreme_numbers if i == 0 else ordinary_numbers)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
names = st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)
options = st.one_of(numbers, junk, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def numeric_entry(type_: str) -> st.SearchStrategy:
    width = 3 if type_.startswith("q") else 2
    value = st.lists(numbers, min_size=width, max_size=width).map(lambda v: plausible(type_, v))
    return st.fixed_dictionaries({"_type": st.just(type_), "_value": value})


def plausible(type_: str, value: list) -> list:
    """Signs and order that the type needs (bounds low <= high, positive sigma, q and log bounds),
    so rejections come from magnitudes, not from mistakes the other tests already cover."""
    value = [abs(v) if i > 0 and "normal" in type_ or i == 2 or ("log" in type_ and "normal" not in type_) else v
             for i, v in enumerate(value)]
    if "normal" not in type_ and value[0] == value[0] and value[1] == value[1]:
        value[:2] = sorted(value[:2])
        if type_ == "randint" and value[0] == value[1]:
            value[1] = value[1] + 1
    return [1 if v == 0 and i > 0 else v for i, v in enumerate(value)]  # no zero sigma, q or upper bound


malformed = st.one_of(
    st.fixed_dictionaries({"_type": st.sampled_from(ALL_TYPES), "_value": st.lists(st.one_of(numbers, junk), max_size=4)}),
    st.fixed_dictionaries({"_type": st.one_of(st.sampled_from(["uniformm", "Choice"]), junk),
                           "_value": st.lists(numbers, max_size=3)}),
    st.just({"_type": "choice", "_value": []}), junk)


def entry(inner: st.SearchStrategy) -> st.SearchStrategy:
    """A parameter: mostly well formed (every NNI type, plain and nested choices), sometimes not."""
    nested = st.lists(st.builds(lambda name, sub: dict(sub, _name=name), names, inner), min_size=1, max_size=3)
    flat = st.lists(options, min_size=1, max_size=6, unique_by=lambda o: json.dumps(o, sort_keys=True, default=str))
    choice = st.fixed_dictionaries({"_type": st.just("choice"), "_value": st.one_of(flat, nested)})
    numeric = st.one_of(*(numeric_entry(t) for t in NUMERIC_TYPES))
    # one_of would flatten the branches (and count each NNI type as one): draw the kind first
    return st.integers(0, 9).flatmap(lambda i: malformed if i == 0 else numeric if i % 2 else choice)


spaces = st.recursive(
    st.dictionaries(names, st.one_of(*(numeric_entry(t) for t in NUMERIC_TYPES)), min_size=1, max_size=3),
    lambda inner: st.dictionaries(names, entry(inner), min_size=1, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces)
def test_any_space_is_rejected_naming_a_parameter_or_samples_finite_round_trips(spec):
    try:
        space = SearchSpace(spec)
    except SearchSpaceError as exc:
        assert any(f"'{name}" in str(exc) for name in spec), (str(exc), list(spec))
        event("rejected")
        return
    event(f"accepted, {len(space.all_decisions)} decisions")
    assert_round_trips(space, n=100)
    assert_round_trips(space, n=100, drift=40.0)


def test_every_nni_type_appears_in_the_generated_spaces():
    assert set(NUMERIC_TYPES) | {"choice"} == set(ALL_TYPES)
