"""Search space parsing, canonical Architectures and their round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nni_gensynth.engine.generator import Generator
from nni_gensynth.engine.space import Architecture, SearchSpace, SearchSpaceError


def test_every_type_parses_and_round_trips_exactly(all_types_space):
    space = SearchSpace(all_types_space)
    gen = Generator(space)
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = gen.sample(rng)
        params = space.to_parameters(arch)
        again = space.from_parameters(params)
        assert again == arch
        assert space.to_parameters(again) == params
        assert again.encode() == arch.encode() and again.hash == arch.hash


def test_architecture_is_hashable_and_canonical():
    space = SearchSpace({"a": {"_type": "choice", "_value": [1, 2]}, "b": {"_type": "uniform", "_value": [0, 1]}})
    x = space.from_parameters({"a": 2, "b": 0.25})
    y = space.from_parameters({"b": 0.25, "a": 2})
    assert x == y and hash(x) == hash(y) and len({x, y}) == 1
    assert isinstance(x, Architecture) and len(x.hash) == 16


def test_finite_size_and_enumeration():
    space = SearchSpace({
        "a": {"_type": "choice", "_value": [{"_name": "x", "k": {"_type": "randint", "_value": [0, 3]}}, {"_name": "y"}]},
        "q": {"_type": "quniform", "_value": [0, 1, 0.25]},
    })
    assert space.size() == (3 + 1) * 5
    every = space.enumerate()
    assert len(every) == 20 and len(set(every)) == 20


@pytest.mark.parametrize("spec, fragment", [
    ({"lr": {"_type": "uniformm", "_value": [0, 1]}}, "'lr' has unknown _type"),
    ({"lr": {"_type": "uniform", "_value": [1, 0]}}, "'lr'"),
    ({"lr": {"_type": "loguniform", "_value": [0, 1]}}, "'lr'"),
    ({"lr": {"_type": "quniform", "_value": [0, 1]}}, "'lr' (quniform) needs 3 values"),
    ({"lr": {"_type": "normal", "_value": [0, -1]}}, "sigma must be positive"),
    ({"k": {"_type": "randint", "_value": [3, 3]}}, "'k' (randint)"),
    ({"k": {"_type": "choice", "_value": []}}, "'k' (choice) has no options"),
    ({"k": {"_type": "choice", "_value": [{"_name": "a"}, 3]}}, "'_name' in every option"),
    ({"k": [1, 2]}, "'k' must be an object"),
    ({}, "empty"),
])
def test_malformed_spaces_are_rejected_with_the_parameter_named(spec, fragment):
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace(spec)
    assert fragment in str(info.value)


def test_parameters_outside_the_space_are_rejected():
    space = SearchSpace({"w": {"_type": "choice", "_value": [16, 32]}, "d": {"_type": "randint", "_value": [1, 4]}})
    with pytest.raises(SearchSpaceError, match="'w'"):
        space.from_parameters({"w": 48, "d": 2})
    with pytest.raises(SearchSpaceError, match="'d'"):
        space.from_parameters({"w": 16, "d": 4})  # randint upper bound is exclusive
    with pytest.raises(SearchSpaceError, match="missing"):
        space.from_parameters({"w": 16})
    with pytest.raises(SearchSpaceError, match="unknown parameter"):
        space.from_parameters({"w": 16, "d": 1, "extra": 0})


def test_unit_coordinates_honour_q_log_and_integers():
    space = SearchSpace({"q": {"_type": "qloguniform", "_value": [1, 100, 5]},
                         "r": {"_type": "randint", "_value": [-2, 3]}})
    q, r = space.decisions
    for u in np.linspace(0, 1, 41):
        v = q.from_unit(u)
        assert 1 <= v <= 100 and (math.isclose(v % 5, 0) or v in (1, 100))
        assert r.from_unit(u) in range(-2, 3)
    assert r.from_unit(0.0) == -2 and r.from_unit(1.0) == 2
