"""Screening ahead: idle devices measure the engine's next candidates (GenSynth.to_screen,
add_measurement; GenSynthTuner.parameters_to_screen, receive_measurement; the screener's threads).
The farm simulation that uses them is tested with the other NAS-Bench-201 benchmarks."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from nni_gensynth.engine.gensynth import GenSynth
from nni_gensynth.engine.objective import Objective, Requirements
from nni_gensynth.engine.space import SearchSpace
from nni_gensynth.tuner import GenSynthTuner

from test_engine import SPACE, CountingProfiler, accuracy, latency

REQUIREMENTS = {"latency_ms": {"max": 10.0}}


def engine_with(profiler, seed: int = 0) -> GenSynth:
    return GenSynth(SearchSpace(SPACE), Objective("accuracy"), Requirements(REQUIREMENTS), profiler=profiler,
                    seed=seed, population_size=4)


def train(engine: GenSynth, n: int) -> None:
    for _ in range(n):
        arch = engine.ask()
        p = engine.space.to_parameters(arch)
        engine.tell(arch, {"accuracy": accuracy(p), "latency_ms": latency(p)})


def test_screened_candidates_are_held_back_until_measured_and_then_proposed_without_a_call():
    profiler = CountingProfiler()
    engine = engine_with(profiler)
    train(engine, 12)
    handed = engine.to_screen(6)
    assert len(handed) == 6 and len(set(handed)) == 6
    assert not set(handed) & set(engine.records)
    assert not set(handed) & set(engine.to_screen(20))  # held back from later screening requests
    assert not set(engine.to_screen(50)) & set(engine.measurements)  # never one measured already
    calls = engine.profiler_calls
    feasible = []
    for arch in handed:
        measured = {"latency_ms": latency(engine.space.to_parameters(arch))}
        engine.add_measurement(arch, measured)
        if measured["latency_ms"] <= 10.0:
            feasible.append(arch)
    assert engine.screened_ahead == 6 and engine.profiler_calls == calls  # not charged to the allowance
    assert feasible, "the engine screened only infeasible candidates"
    # each measured feasible candidate joins every later pool with its figures known ...
    pool = {row.tobytes() for row in engine._pool_rows()}
    assert all(engine.space.values_row(arch).tobytes() in pool for arch in feasible)
    # ... and is proposed, when it ranks first, without measuring it again
    for _ in range(12):
        before = engine.profiler_calls
        arch = engine.ask()
        if arch in feasible:
            assert engine.profiler_calls == before
        p = engine.space.to_parameters(arch)
        engine.tell(arch, {"accuracy": accuracy(p), "latency_ms": latency(p)})


def test_a_device_that_could_not_measure_releases_its_candidate():
    engine = engine_with(CountingProfiler())
    train(engine, 8)
    [arch] = engine.to_screen(1)
    engine.add_measurement(arch, None)
    assert arch not in engine.measurements and engine.screened_ahead == 0
    assert engine._screening == set()


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.floats(), max_size=3),
                 st.dictionaries(st.text(max_size=8), st.one_of(st.floats(allow_nan=True), st.text(max_size=8),
                                                                 st.none()), max_size=4)))
def test_any_measurement_value_is_validated_and_never_raises(measured):
    engine = engine_with(CountingProfiler())
    train(engine, 4)
    [arch] = engine.to_screen(1)
    engine.add_measurement(arch, measured)
    if arch in engine.measurements:
        for value in engine.measurements[arch].values():
            assert not isinstance(value, float) or value == value and abs(value) != float("inf")
    engine.ask()  # the search goes on


def test_no_screening_without_a_profiler_or_requirements():
    space = SearchSpace(SPACE)
    assert GenSynth(space, Objective("accuracy"), seed=0).to_screen(3) == []
    assert GenSynth(space, Objective("accuracy"), Requirements(REQUIREMENTS), seed=0).to_screen(3) == []


def test_tuner_screening_api_speaks_parameters():
    tuner = GenSynthTuner(optimize_mode="maximize", objective="accuracy", constraints=REQUIREMENTS,
                          profiler=lambda p: {"latency_ms": latency(p)}, seed=0, population_size=4)
    assert tuner.parameters_to_screen(2) == []  # before the search space: nothing, no error
    tuner.update_search_space(SPACE)
    for pid in range(6):
        p = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, p, {"default": accuracy(p), "accuracy": accuracy(p), "latency_ms": latency(p)})
        tuner.trial_end(pid, True)
    handed = tuner.parameters_to_screen(3)
    assert len(handed) == 3 and all(set(p) == set(SPACE) for p in handed)
    for p in handed:
        tuner.receive_measurement(p, {"latency_ms": latency(p)})
    tuner.receive_measurement({"w0": "not a width"}, {"latency_ms": 1.0})  # outside the space: logged, ignored
    tuner.receive_measurement(handed[0], "garbage")  # already measured: ignored
    assert tuner.engine.screened_ahead == 3


def test_tuner_screens_ahead_in_background_threads_beside_the_nni_calls():
    import threading
    import time

    lock = threading.Lock()
    active, overlaps, calls = [0], [0], []

    def slow_device(p: dict) -> dict:
        with lock:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
            calls.append(threading.current_thread().name)
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        if p["k"] == 7 and p["w0"] == 64:
            raise ConnectionError("board dropped")  # a failing device loses that measurement only
        return {"latency_ms": latency(p)}

    tuner = GenSynthTuner(optimize_mode="maximize", objective="accuracy", constraints=REQUIREMENTS,
                          profiler=slow_device, seed=0, population_size=4, screen_ahead=2)
    tuner.update_search_space(SPACE)
    try:
        for pid in range(16):
            p = tuner.generate_parameters(pid)
            tuner.receive_trial_result(pid, p, {"default": accuracy(p), "accuracy": accuracy(p),
                                                "latency_ms": latency(p)})
            tuner.trial_end(pid, True)
            time.sleep(0.03)
        deadline = time.monotonic() + 10
        while tuner.engine.screened_ahead < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        tuner._screener.stop()
    assert not tuner._screener.running
    assert tuner.engine.screened_ahead >= 4
    assert any(name.startswith("gensynth-screener") for name in calls)
    assert len(tuner.engine.records) == 16


def test_screen_ahead_classarg_is_checked():
    with pytest.raises(ValueError, match="screen_ahead"):
        GenSynthTuner(constraints=REQUIREMENTS, screen_ahead=-1)
    with pytest.raises(ValueError, match="screen_ahead: needs a device"):
        GenSynthTuner(constraints=REQUIREMENTS, screen_ahead=2)
    with pytest.raises((TypeError, ValueError), match="screen_ahead"):
        GenSynthTuner(constraints=REQUIREMENTS, profiler=lambda p: {}, screen_ahead="two")


def test_a_stopped_screener_hands_back_what_it_did_not_measure():
    import threading
    import time

    from nni_gensynth.screener import SCREEN_BATCH, BackgroundScreener

    handed, delivered, lock = [], [], threading.Lock()

    def next_candidates(k: int) -> list:
        with lock:
            batch = list(range(len(handed), len(handed) + k))
            handed.extend(batch)
        return batch

    def deliver(candidate, measured) -> None:
        with lock:
            delivered.append((candidate, measured))

    screener = BackgroundScreener(1, next_candidates, lambda c: time.sleep(0.05) or {"latency_ms": 1.0},
                                  deliver).start()
    time.sleep(0.12)
    screener.stop()
    assert not screener.running
    assert sorted(c for c, _ in delivered) == handed  # every candidate handed out came back, once
    assert len(handed) == SCREEN_BATCH and any(m is None for _, m in delivered) and screener.measured >= 1


def test_screening_a_small_space_measures_each_network_once_then_stops():
    space = SearchSpace({"a": {"_type": "choice", "_value": [1, 2, 3]}, "b": {"_type": "choice", "_value": [1, 2]}})
    engine = GenSynth(space, Objective("accuracy"), Requirements({"latency_ms": {"max": 4.0}}),
                      profiler=lambda p: {"latency_ms": p["a"] * p["b"]}, seed=0, population_size=2)
    seen = []
    for _ in range(10):
        for arch in engine.to_screen(2):
            p = space.to_parameters(arch)
            seen.append(arch)
            engine.add_measurement(arch, {"latency_ms": p["a"] * p["b"]})
    assert len(seen) == len(set(seen)) == 6 and engine.screened_ahead == 6
    assert engine.to_screen(3) == []


def test_a_finite_space_swept_in_full_never_hands_out_a_candidate_twice():
    space = SearchSpace({"a": {"_type": "choice", "_value": [1, 2, 3]}, "b": {"_type": "choice", "_value": [1, 2]}})
    engine = GenSynth(space, Objective("accuracy"), Requirements({"latency_ms": {"max": 4.0}}),
                      profiler=lambda p: {"latency_ms": p["a"] * p["b"]}, seed=0, population_size=2)
    out = engine.to_screen(6)
    assert len(set(out)) == len(out) >= 1
    assert not set(engine.to_screen(6)) & set(out)  # still out with their devices


def test_screening_sweeps_a_finite_space_when_theta_g_samples_only_measured_candidates():
    """Measured feasible candidates stay in θ_G's pool (ask may propose them without a call), so
    a pool can be non-empty and still hold nothing to screen: the rest of the space is swept."""
    values = list(range(1, 8))
    space = SearchSpace({k: {"_type": "choice", "_value": values} for k in "abc"})
    engine = GenSynth(space, Objective("accuracy"), Requirements({"latency_ms": {"max": 1e9}}),
                      profiler=lambda p: {"latency_ms": float(p["a"] * p["b"] * p["c"])}, seed=0,
                      population_size=2, pool_size=40)
    seen = []
    for _ in range(space.size()):
        batch = engine.to_screen(5)
        if not batch:
            break
        for arch in batch:
            p = space.to_parameters(arch)
            seen.append(arch)
            engine.add_measurement(arch, {"latency_ms": float(p["a"] * p["b"] * p["c"])})
    assert len(seen) == len(set(seen)) == space.size() == 343
    assert engine.to_screen(5) == []
