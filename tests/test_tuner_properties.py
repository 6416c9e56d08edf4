"""Property-based: nothing a trial sends can make a GenSynthTuner callback raise into NNI.

An exception escaping a tuner callback kills NNI's dispatcher thread and the experiment hangs
RUNNING with no error shown. Hypothesis drives every callback with generated hostile values
(huge and tiny numbers, NaN, wrong types, deep nesting, big containers) in random order.
"""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings, strategies as st

from nni_gensynth import GenSynthTuner

SPACE = {"w": {"_type": "choice", "_value": [8, 16, 32]},
         "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
         "block": {"_type": "choice", "_value": [{"_name": "keep", "k": {"_type": "randint", "_value": [1, 4]}},
                                                 {"_name": "skip"}]}}
numbers = st.one_of(st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([10 ** 400, -10 ** 400, 1e-320, 1e308, float("nan"), float("inf")]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=50), st.just("x" * 6000))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=5)),
                           max_leaves=30)
metric_keys = st.sampled_from(["default", "accuracy", "latency_ms", "params", "macs", "netscore", "responses", "energy_mj"])
reports = st.one_of(json_values, st.dictionaries(metric_keys, json_values, max_size=8),
                    st.dictionaries(metric_keys, numbers, max_size=8))
calls = st.lists(st.tuples(st.sampled_from(["result", "end", "import", "foreign"]), reports, st.booleans()),
                 min_size=1, max_size=12)


def deep(levels: int) -> dict:
    value: dict = {"default": 0.5}
    for _ in range(levels):
        value = {"x": value}
    return value


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(objective=st.sampled_from(["default", "accuracy", "netscore", "netscore_hw"]), calls=calls,
       seed=st.integers(0, 3))
def test_no_callback_raises_whatever_the_trials_report(tmp_path_factory, objective, calls, seed):
    import os

    folder = tmp_path_factory.mktemp("ckpt")
    os.environ["NNI_CHECKPOINT_DIRECTORY"] = str(folder)
    try:
        tuner = GenSynthTuner(objective=objective, seed=seed, population_size=2,
                              constraints={"latency_ms": {"max": 5.0}, "accuracy": {"min": 0.1}})
        tuner.update_search_space(SPACE)
        pid = 0
        for kind, report, success in calls:
            params = tuner.generate_parameters(pid)
            if kind == "result":
                tuner.receive_trial_result(pid, params, report)
                tuner.trial_end(pid, success)
            elif kind == "end":
                tuner.trial_end(pid, success)
            elif kind == "import":
                tuner.import_data([{"parameter": params, "value": report}, report, {"parameter": report, "value": 1}])
            else:  # a result for parameters the tuner never proposed, or garbage parameters
                tuner.receive_trial_result(10_000 + pid, report if isinstance(report, dict) else params, report)
            pid += 1
        tuner.receive_trial_result(pid, tuner.generate_parameters(pid), deep(3000))
        batch = tuner.generate_multiple_parameters(list(range(pid + 1, pid + 4)))
        assert len(batch) == 3
        state = json.loads((folder / "gensynth" / "state.json").read_text())
        json.dumps(state, allow_nan=False)
        for record in state["records"]:
            for value in (record["metrics"] or {}).values():
                assert not isinstance(value, float) or math.isfinite(value)
    finally:
        del os.environ["NNI_CHECKPOINT_DIRECTORY"]
