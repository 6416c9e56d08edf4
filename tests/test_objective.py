"""U and 1_r are total: any value a trial reports gives a score, a failure (None) or an unknown
requirement, never an exception (issue #11)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_gensynth.engine.objective import Objective, Requirements, netscore, netscore_hw

HOSTILE = [10**400, -10**400, float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 1e-320, 5e-324,
           0, -0.0, True, False, None, "0.9", [0.9], {"v": 0.9}, np.float64("nan"), np.int64(3)]


@pytest.mark.parametrize("metric", ["default", "netscore", "netscore_hw"])
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:24])
def test_score_of_a_hostile_value_is_a_number_or_none(metric, value):
    for mode in ("maximize", "minimize"):
        objective = Objective(metric, mode)
        for metrics in ({metric: value}, {"accuracy": value, "params": 1e6, "macs": 1e9, "latency_ms": 2.0},
                        {"accuracy": 0.9, "params": value, "macs": value, "latency_ms": value}):
            score = objective.score(metrics)
            assert score is None or math.isfinite(score)


@pytest.mark.parametrize("accuracy, params, cost", [
    (1e200, 1e6, 1e9),  # overflowed a ** 2
    (150.0, 1e6, 1e9),  # above 100 %
    (0.0, 1e6, 1e9), (-0.5, 1e6, 1e9),
    (0.9, 0, 1e9), (0.9, 1e6, 0), (0.9, -1, 1e9),
    (0.9, 10**400, 1e9),  # float(int) overflowed
    (0.9, 1e6, float("nan")), (0.9, 1e6, float("inf")),
])
def test_netscore_of_meaningless_inputs_is_none(accuracy, params, cost):
    metrics = {"accuracy": accuracy, "params": params, "macs": cost, "latency_ms": cost}
    assert Objective("netscore").score(metrics) is None
    assert Objective("netscore_hw").score(metrics) is None
    with pytest.raises(ValueError, match="netscore"):
        netscore(accuracy, params, cost)


def test_netscore_of_extreme_but_meaningful_inputs_is_finite():
    # latency 1e-320 ms: sqrt of a subnormal used to underflow the denominator to 0
    assert math.isfinite(Objective("netscore_hw").score({"accuracy": 0.9, "params": 1e6, "latency_ms": 1e-320}))
    assert math.isfinite(Objective("netscore").score({"accuracy": 100, "params": 1e300, "macs": 5e-324}))
    # the formula itself is unchanged: Wong (2018), a in %, p in M, m in G
    assert netscore(0.9, 2e6, 3e8) == pytest.approx(20 * math.log10(90.0 ** 2 / (2 ** 0.5 * 0.3 ** 0.5)))
    assert netscore_hw(90.0, 1e6, 4.0) == pytest.approx(20 * math.log10(90.0 ** 2 / 2.0))


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**500, 10**500),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(["default", "accuracy", "params", "macs", "latency_ms"]),
                       st.one_of(json_scalars, st.lists(json_scalars, max_size=2))))
def test_score_and_requirements_are_total(metrics):
    for metric in ("default", "netscore", "netscore_hw", "latency_ms"):
        score = Objective(metric).score(metrics)
        assert score is None or math.isfinite(score)
    requirements = Requirements({"latency_ms": {"max": 25}, "accuracy": {"min": 0.5}})
    assert requirements.is_met(metrics) in (True, False, None)
    assert requirements.is_met(metrics, only_known=True) in (True, False)


UNKNOWN = [10**400, -10**400, float("nan"), float("inf"), -float("inf"), True, False, None, "0.9", [0.9],
           {"v": 0.9}, np.float64("nan")]
JUDGED = [1e308, -1e308, 1e-320, 5e-324, 0, -0.0, np.int64(3), 2**70]


@pytest.mark.parametrize("value", UNKNOWN, ids=lambda v: repr(v)[:24])
def test_a_requirement_on_an_unusable_value_is_unknown(value):
    requirements = Requirements({"latency_ms": {"max": 25}})
    assert requirements.is_met({"latency_ms": value}) is None
    assert requirements.violation({"latency_ms": value}) is None
    assert requirements.is_met({"latency_ms": value}, only_known=True) is True  # judged on what is known


@pytest.mark.parametrize("value", JUDGED, ids=lambda v: repr(v)[:24])
def test_a_requirement_on_an_extreme_finite_value_is_judged(value):
    requirements = Requirements({"latency_ms": {"min": -1e308, "max": 25}})
    assert requirements.is_met({"latency_ms": value}) is (float(value) <= 25)
