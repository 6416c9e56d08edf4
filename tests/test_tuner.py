"""GenSynthTuner against the NNI Tuner contract (see DESIGN.md, "Contracts")."""
from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from nni_gensynth import GenSynthTuner
from nni_gensynth.engine.space import SearchSpaceError


def _check_in_space(space_spec: dict, params: dict) -> None:
    """Independent check that `params` is a legal NNI value for `space_spec` (types and bounds)."""
    assert set(params) - {"_name"} == {k for k in space_spec if k != "_name"}
    for name, spec in space_spec.items():
        if name == "_name":
            continue
        t, v, x = spec["_type"], spec["_value"], params[name]
        if t == "choice":
            if all(isinstance(o, dict) and "_name" in o for o in v):
                option = next(o for o in v if o["_name"] == x["_name"])
                _check_in_space(option, x)
            else:
                assert any(x == o and type(x) is type(o) for o in v), (name, x)
        elif t == "randint":
            assert isinstance(x, int) and v[0] <= x < v[1], (name, x)
        else:
            assert isinstance(x, float) and math.isfinite(x), (name, x)
            if t in ("uniform", "quniform", "loguniform", "qloguniform"):
                assert v[0] <= x <= v[1], (name, x)
            if t.startswith("q"):
                q = v[2]
                on_grid = abs(x / q - round(x / q)) < 1e-6
                assert on_grid or x in (v[0], v[1]), (name, x)
            if "log" in t:
                assert x > 0


def _objective(params: dict) -> float:
    return -abs(params["dropout"] - 0.2) - abs(params["depth"] - 3) / 4 + (params["width"] == 32)


def test_three_rounds_of_fifty_proposals_stay_in_the_space(all_types_space):
    tuner = GenSynthTuner(seed=3, population_size=10)
    tuner.update_search_space(all_types_space)
    pid = 0
    for _ in range(3):
        batch = tuner.generate_multiple_parameters(list(range(pid, pid + 50)))
        assert len(batch) == 50
        for i, params in enumerate(batch):
            _check_in_space(all_types_space, params)
            tuner.receive_trial_result(pid + i, params, {"default": _objective(params)})
            tuner.trial_end(pid + i, True)
        pid += 50
    assert len(tuner.engine.cycles) == 15


def test_no_duplicates_while_unseen_points_remain_then_best_again():
    space = {"a": {"_type": "choice", "_value": [0, 1, 2, 3]}, "b": {"_type": "randint", "_value": [0, 3]}}
    tuner = GenSynthTuner(seed=0, population_size=4)
    tuner.update_search_space(space)
    seen = []
    for pid in range(12):
        p = tuner.generate_parameters(pid)
        seen.append(json.dumps(p, sort_keys=True))
        tuner.receive_trial_result(pid, p, p["a"] * 3 + p["b"])
    assert len(set(seen)) == 12  # all 12 points, no repeats
    again = [tuner.generate_parameters(pid) for pid in range(12, 16)]
    assert len(again) == 4
    assert {"a": 3, "b": 2} in again  # the best point is proposed again


@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_same_proposals(all_types_space, seed):
    def run(s):
        tuner = GenSynthTuner(seed=s, population_size=5)
        tuner.update_search_space(all_types_space)
        out = []
        for pid in range(25):
            p = tuner.generate_parameters(pid)
            tuner.receive_trial_result(pid, p, _objective(p))
            out.append(json.dumps(p, sort_keys=True))
        return out

    assert run(seed) == run(seed)
    assert run(seed) != run(seed + 1)


def test_failed_trials_and_nan_metrics_are_recorded_not_fatal():
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    tuner = GenSynthTuner(seed=1, population_size=3)
    tuner.update_search_space(space)
    outcomes = [None, float("nan"), {"default": float("nan")}, {"default": None}, "garbage", {"default": 0.5}]
    for pid, outcome in enumerate(outcomes):
        p = tuner.generate_parameters(pid)
        if outcome is None:
            tuner.trial_end(pid, False)  # died without reporting
        else:
            tuner.receive_trial_result(pid, p, outcome)
            tuner.trial_end(pid, True)
    engine = tuner.engine
    assert len(engine.records) == 6
    assert len(engine.failed) == 5
    assert [r.score for r in engine.best()] == [0.5]
    assert len(tuner.generate_multiple_parameters([10, 11, 12])) == 3


def test_scalar_and_dict_metrics_and_objectives():
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    tuner = GenSynthTuner(optimize_mode="minimize", objective="loss", seed=0)
    tuner.update_search_space(space)
    p = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, p, {"default": 9.0, "loss": 0.3})
    p = tuner.generate_parameters(1)
    tuner.receive_trial_result(1, p, {"default": 9.0, "loss": 0.1})
    assert tuner.engine.best_u() == pytest.approx(0.1)


def test_netscore_objective_with_latency_constraint():
    space = {"w": {"_type": "choice", "_value": [1, 2, 4]}}
    tuner = GenSynthTuner(objective="netscore", constraints={"latency_ms": {"max": 3}}, seed=0)
    tuner.update_search_space(space)
    for pid in range(3):
        p = tuner.generate_parameters(pid)
        w = p["w"]
        tuner.receive_trial_result(pid, p, {"default": 0, "accuracy": 0.9, "params": 1e6 * w,
                                            "macs": 1e8 * w, "latency_ms": float(w)})
    best = tuner.engine.best()
    assert [r.metrics["latency_ms"] for r in best] == [1.0, 2.0]  # w=4 violates 1_r


def test_import_data_teaches_without_duplicates():
    space = {"a": {"_type": "choice", "_value": [0, 1, 2]}, "b": {"_type": "choice", "_value": [0, 1]}}
    data = [{"parameter": {"a": a, "b": b}, "value": {"default": a + b}} for a in range(3) for b in range(2)
            if (a, b) != (0, 0)]
    data.append({"parameter": {"a": 9, "b": 0}, "value": 1.0})  # outside the space: skipped
    data.append({"nonsense": True})
    tuner = GenSynthTuner(seed=0)
    tuner.update_search_space(space)
    tuner.import_data(data)
    tuner.import_data(data[:2])  # already known: not counted twice
    assert len(tuner.engine.records) == 5
    assert tuner.generate_parameters(0) == {"a": 0, "b": 0}  # the one unseen point


def test_import_data_before_the_search_space_is_kept():
    tuner = GenSynthTuner(seed=0)
    tuner.import_data([{"parameter": {"a": 1}, "value": 1.0}])
    tuner.update_search_space({"a": {"_type": "choice", "_value": [0, 1]}})
    assert len(tuner.engine.records) == 1


@pytest.mark.parametrize("kwargs, fragment, error", [
    ({"optimize_mode": "max"}, "optimize_mode", ValueError),
    ({"constraints": {"latency_ms": {"maximum": 3}}}, "constraints", ValueError),
    ({"constraints": {"latency_ms": 3}}, "constraints", TypeError),
    ({"constraints": {"latency_ms": {"min": 5, "max": 3}}}, "constraints", ValueError),
    ({"constraints": [1]}, "constraints", TypeError),
    ({"hw_profile": "no-such-device"}, "hw_profile", ValueError),
    ({"hw_profile": "host-cpu,host-cpu"}, "hw_profile", ValueError),
    ({"hw_profile": "host-cpu,"}, "hw_profile", ValueError),
    ({"profiler": "not a path"}, "profiler", ValueError),
    ({"profiler": "json:no_such_function"}, "profiler", ValueError),
    ({"population_size": 1}, "population_size", ValueError),
    ({"population_size": "8"}, "population_size", TypeError),
    ({"seed": -1}, "seed", ValueError),
    ({"objective": ""}, "objective", ValueError),
    ({"prototype": [1, 2]}, "prototype", TypeError),
    ({"prototype": "no_such_net"}, "prototype", ValueError),
    ({"objective": "test_accuracy"}, "held-out test split", ValueError),
    ({"constraints": {"test_accuracy": {"min": 0.9}}}, "held-out test split", ValueError),
    ({"constraints": {"latency_ms": {"max": "prototype / 4"}}}, "need the prototype", ValueError),
    ({"constraints": {"latency_ms": {"max": "prototype // 4"}}, "prototype": {"a": 1}}, "constraints", ValueError),
    ({"populaton_size": 8}, "populaton_size", TypeError),
])
def test_bad_class_args_fail_in_init_naming_the_argument(kwargs, fragment, error):
    with pytest.raises(error) as info:
        GenSynthTuner(**kwargs)
    assert fragment in str(info.value)


def test_several_hardware_profiles_make_one_evaluator():
    from nni_gensynth.evaluator import Evaluator

    tuner = GenSynthTuner(hw_profile="host-cpu,host-tflite", constraints={"latency_ms": {"max": 1}})
    evaluator = tuner._profiler_fn
    assert isinstance(evaluator, Evaluator)
    assert [p.name for p in evaluator.profiles] == ["host-cpu", "host-tflite"]
    assert evaluator.requirements.to_config() == {"latency_ms": {"max": 1.0}}  # it stops at a broken one


def test_the_screening_evaluator_builds_what_the_trial_command_builds(monkeypatch):
    """Inside NNI the dispatcher gets the experiment config; the tuner reads the trial command."""
    import base64

    config = {"trialCommand": "python3 -m nni_gensynth.trial --builder mobilenetv2 --image-size 32 --channels 3"}
    monkeypatch.setattr("sys.argv", ["nni", "--exp_params", base64.b64encode(json.dumps(config).encode()).decode()])
    evaluator = GenSynthTuner(hw_profile="host-cpu")._profiler_fn
    assert evaluator.spec.builder == "mobilenetv2" and evaluator.input_shape == (1, 3, 32, 32)
    explicit = GenSynthTuner(hw_profile="host-cpu", evaluation={"image_size": 8})._profiler_fn
    assert explicit.spec.builder == "macro_mobilenet" and explicit.input_shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match="evaluation: unknown setting 'image'"):
        GenSynthTuner(hw_profile="host-cpu", evaluation={"image": 8})


def test_bad_search_space_and_prototype_name_the_problem():
    tuner = GenSynthTuner(prototype={"a": 5})
    with pytest.raises(SearchSpaceError, match="'lr'"):
        tuner.update_search_space({"lr": {"_type": "uniform", "_value": [1]}})
    with pytest.raises(ValueError, match="prototype"):
        tuner.update_search_space({"a": {"_type": "choice", "_value": [1, 2]}})


def test_prototype_is_the_first_proposal():
    proto = {"w": 32, "d": 3}
    tuner = GenSynthTuner(prototype=proto, seed=0)
    tuner.update_search_space({"w": {"_type": "choice", "_value": [16, 32, 64]}, "d": {"_type": "randint", "_value": [1, 6]}})
    assert tuner.generate_parameters(0) == proto


def test_engine_error_never_escapes_generate(monkeypatch, all_types_space):
    tuner = GenSynthTuner(seed=0)
    tuner.update_search_space(all_types_space)

    def broken():
        raise MemoryError("boom")

    monkeypatch.setattr(tuner.engine, "_choose", broken)
    params = tuner.generate_multiple_parameters([0, 1, 2])
    assert len(params) == 3
    for p in params:
        _check_in_space(all_types_space, p)


def test_trial_end_racing_generate_parameters(all_types_space):
    tuner = GenSynthTuner(seed=0, population_size=4)
    tuner.update_search_space(all_types_space)
    issued: list = []
    errors: list = []
    lock = threading.Lock()
    done = threading.Event()

    def proposer():
        try:
            for pid in range(120):
                p = tuner.generate_parameters(pid)
                with lock:
                    issued.append((pid, p))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def finisher():
        try:
            finished = 0
            while not done.is_set() or finished < len(issued):
                with lock:
                    batch = issued[finished:]
                for pid, p in batch:
                    if pid % 5 == 0:
                        tuner.trial_end(pid, False)
                    else:
                        tuner.receive_trial_result(pid, p, _objective(p))
                        tuner.trial_end(pid, True)
                finished += len(batch)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=proposer), threading.Thread(target=finisher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(tuner.engine.records) == 120
    assert not tuner.engine.pending
    assert len(tuner.engine.failed) == 24


def test_checkpoint_round_trip_continues_learning(tmp_path, monkeypatch, all_types_space):
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path))
    first = GenSynthTuner(seed=5, population_size=5)
    first.update_search_space(all_types_space)
    history = []
    for pid in range(17):
        p = first.generate_parameters(pid)
        first.receive_trial_result(pid, p, _objective(p))
        history.append({"parameter": p, "value": _objective(p)})
    state_file = tmp_path / "gensynth" / "state.json"
    assert state_file.exists()  # saved after every result, without being asked

    resumed = GenSynthTuner(seed=5, population_size=5)
    resumed.load_checkpoint()  # NNI: before the search space arrives
    resumed.update_search_space(all_types_space)
    resumed.import_data(history)  # NNI replays finished trials on resume: no double counting
    a, b = first.engine, resumed.engine
    assert len(b.records) == 17 and len(b.cycles) == len(a.cycles) == 3
    assert b._results_in_cycle == a._results_in_cycle == 2
    for i in a.generator.logits:
        assert a.generator.logits[i] == pytest.approx(b.generator.logits[i])
    # the same next proposals: learning continued from the same θ_G, θ_I and RNG
    assert [first.generate_parameters(100 + i) for i in range(5)] == \
        [resumed.generate_parameters(100 + i) for i in range(5)]


def test_result_after_trial_end_replaces_the_failure_without_double_counting():
    """NNI may report a trial ended before its final metric arrives."""
    tuner = GenSynthTuner(seed=0, population_size=3)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    params = [tuner.generate_parameters(pid) for pid in range(3)]
    tuner.trial_end(0, True)  # ended, result still in flight: recorded as failed for now
    tuner.receive_trial_result(0, params[0], 0.7)
    tuner.receive_trial_result(1, params[1], 0.2)
    assert len(tuner.engine.cycles) == 0 and tuner.engine._results_in_cycle == 2
    assert tuner.engine.best_u() == pytest.approx(0.7) and not tuner.engine.failed
    tuner.receive_trial_result(2, params[2], 0.1)
    assert len(tuner.engine.cycles) == 1


SMALL = {"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 16, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 1, "stage3_width": 24, "stage3_kernel": 5, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 1, "lr": 0.01}


def test_prototype_by_name_is_its_parameter_dict():
    from nni_gensynth.models.mobilenetv2 import prototype_parameters

    assert GenSynthTuner(prototype="mobilenetv2").prototype_parameters == prototype_parameters()
    assert GenSynthTuner(prototype="nni_gensynth.models.resnet:prototype_parameters").prototype_parameters


def test_requirements_relative_to_the_prototype_are_resolved_once_and_survive_resume(tmp_path, monkeypatch):
    """The tuner evaluates the prototype itself (trains and measures it as a trial would), resolves
    the relative bounds from its figures, learns from it first, and saves both in its checkpoint;
    a resumed tuner reads them back instead of training the prototype again."""
    from nni_gensynth.evaluator import Evaluator

    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    space = json.load(open(Path(__file__).resolve().parents[1] / "search_spaces" / "mobilenet_macro.json"))
    args = dict(prototype=SMALL, objective="netscore", hw_profile="host-cpu", seed=0, population_size=3,
                evaluation={"epochs": 1, "hw_profiles": ["host-cpu"]},
                constraints={"latency_ms": {"max": "prototype / 2"}, "macs": {"max": "prototype * 0.5"},
                             "accuracy": {"min": "prototype - 0.2"}, "params": {"max": 1e9}})
    tuner = GenSynthTuner(**args)
    tuner.update_search_space(space)
    proto = tuner.prototype_result
    assert proto["trained"] and proto["latency_ms"] > 0
    resolved = tuner.requirements.to_config()
    assert resolved["latency_ms"]["max"] == pytest.approx(proto["latency_ms"] / 2)
    assert resolved["macs"]["max"] == pytest.approx(proto["macs"] * 0.5)
    assert resolved["accuracy"]["min"] == pytest.approx(proto["accuracy"] - 0.2)
    assert resolved["params"] == {"max": 1e9}
    assert len(tuner.engine.records) == 1  # learned from the prototype first
    assert tuner._profiler_fn.requirements.to_config() == resolved  # screening stops on the resolved bounds
    params = tuner.generate_parameters(0)
    assert params != SMALL  # the prototype is known, not proposed again
    saved = json.loads((tmp_path / "gensynth" / "state.json").read_text())
    assert saved["tuner"]["requirements"] == resolved and saved["tuner"]["prototype_result"]["accuracy"] == proto["accuracy"]

    monkeypatch.setattr(Evaluator, "evaluate", lambda *a, **k: pytest.fail("the prototype was evaluated again"))
    resumed = GenSynthTuner(**args)
    resumed.load_checkpoint()
    resumed.update_search_space(space)
    assert resumed.requirements.to_config() == resolved and len(resumed.engine.records) == 1


def test_a_prototype_that_cannot_be_evaluated_is_a_named_error():
    tuner = GenSynthTuner(prototype={"a": 1}, constraints={"accuracy": {"min": "prototype - 0.01"}},
                          evaluation={"epochs": 1, "hw_profiles": []})
    with pytest.raises(ValueError, match="missing parameter 'stem_width'"):  # not a macro_mobilenet network
        tuner.update_search_space({"a": {"_type": "choice", "_value": [1, 2]}})


HOSTILE_VALUES = [10 ** 400, -10 ** 400, float("nan"), float("inf"), 1e308, 1e-320, "12", None, True, [1, 2],
                  {"default": {"nested": 1}}, {"default": 10 ** 400}, {"default": 0.5, "accuracy": 1e200},
                  {"default": 0.5, "latency_ms": 1e-320, "accuracy": 0.9}, {"default": 0.5, "responses": "{[}"},
                  {"default": 0.5, "responses": {"w": {"target": 10 ** 400, "weight": float("nan")}}}]


@pytest.mark.parametrize("objective", ["default", "netscore", "netscore_hw", "accuracy"])
def test_no_reported_value_escapes_a_tuner_callback(objective):
    """A trial can report anything JSON holds; an exception escaping a callback would kill NNI's
    dispatcher thread and hang the experiment. Each bad result is a failure of that trial only."""
    tuner = GenSynthTuner(objective=objective, seed=0, population_size=3,
                          constraints={"latency_ms": {"max": 5}})
    tuner.update_search_space({"w": {"_type": "choice", "_value": [8, 16, 32]}, "x": {"_type": "uniform", "_value": [0, 1]}})
    for pid, value in enumerate(HOSTILE_VALUES):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, value)
        tuner.trial_end(pid, True)
    nested = value = {"default": 0.5}
    for _ in range(5000):
        nested = {"a": nested}
    params = tuner.generate_parameters(1000)
    tuner.receive_trial_result(1000, params, {"default": 0.5, "responses": nested, "deep": nested})
    tuner.receive_trial_result(1001, {"w": 999, "x": 2.0}, 0.5)  # parameters outside the space: ignored
    tuner.import_data([{"parameter": {"w": 8, "x": 0.5}, "value": 10 ** 400}, "junk", {"parameter": None, "value": 1}])
    assert len(tuner.engine.records) >= len(HOSTILE_VALUES)
    assert len(tuner.generate_multiple_parameters(list(range(2000, 2005)))) == 5


def test_a_damaged_checkpoint_is_kept_aside_and_the_search_starts_fresh(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path))
    state = tmp_path / "gensynth" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "generator": {"log')  # truncated by a crash mid-write
    tuner = GenSynthTuner(seed=0)
    tuner.load_checkpoint()
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    assert tuner.engine.records == {} and "corrupt" in caplog.text
    assert list(state.parent.glob("state.json.corrupt-*"))
    tuner.generate_parameters(0)  # and it saves a good state again
    assert json.loads(state.read_text())["version"] == 1
