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


# -- noisy measurements: a requirement is judged on the far end of the 95% interval ----------------

def test_a_max_requirement_is_judged_on_the_upper_bound_of_a_noisy_median():
    requirements = Requirements({"latency_ms": {"max": 1.0}, "accuracy": {"min": 0.9}})
    assert requirements.is_met({"latency_ms": 0.95, "accuracy": 0.95}) is True
    assert requirements.is_met({"latency_ms": 0.95, "latency_ms_upper": 1.1, "accuracy": 0.95}) is False
    assert requirements.is_met({"latency_ms": 0.95, "latency_ms_upper": 0.99, "accuracy": 0.95}) is True
    assert requirements.is_met({"latency_ms": 0.95, "accuracy": 0.95, "accuracy_lower": 0.85}) is False
    # an "upper" below the value (or not a number) never makes a network look better than its median
    assert requirements.is_met({"latency_ms": 1.05, "latency_ms_upper": 0.5, "accuracy": 0.95}) is False
    for hostile in ("nan", float("nan"), 10**400, [1.1], {"x": 1.1}, True):  # unusable: the median is judged
        assert requirements.is_met({"latency_ms": 0.95, "latency_ms_upper": hostile, "accuracy": 0.95}) is True


@settings(max_examples=200, deadline=None)
@given(samples=st.lists(st.floats(0.01, 100.0), min_size=10, max_size=200))
def test_the_upper_bound_of_a_median_is_at_least_the_median(samples):
    from nni_gensynth.device import stats
    assert stats.median_upper_bound(samples) >= stats.median(samples)


def test_a_noisy_measurement_reports_its_upper_bound_and_a_steady_one_does_not():
    from nni_gensynth.hardware.measurement import Measurement, MeasurementSpec
    spec = MeasurementSpec("arch", "p", "fp", "onnxruntime", "onnxruntime 1.0", 1, "local:x")
    steady = Measurement(spec, tuple(1.0 + 0.001 * (i % 3) for i in range(50)), {"energy_mj": 0.1, "source": "model"}, 3.0)
    # load that comes and goes: the second and fourth fifths of the run were twice as slow
    noisy_samples = tuple(2.0 if (i // 10) in (1, 3) else 1.0 for i in range(50))
    noisy = Measurement(spec, noisy_samples, {"energy_mj": 0.1, "source": "model"}, 3.0)
    assert "latency_ms_upper" not in steady.metrics()
    figures = noisy.metrics()
    assert figures["latency_rse"] > 0.03 and figures["latency_ms_upper"] > figures["latency_ms"]
    requirement = Requirements({"latency_ms": {"max": figures["latency_ms"] * 1.01}})
    assert requirement.is_met({"latency_ms": figures["latency_ms"]}) is True
    assert requirement.is_met(figures) is False
