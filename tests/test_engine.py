"""The GenSynth engine on its own: no NNI, measure before train, learning, generation."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nni_gensynth.engine.gensynth import GenSynth
from nni_gensynth.engine.generator import Generator
from nni_gensynth.engine.objective import Objective, Requirements
from nni_gensynth.engine.space import SearchSpace

WIDTHS = [8, 16, 24, 32, 48, 64]
SPACE = {f"w{i}": {"_type": "choice", "_value": WIDTHS} for i in range(4)}
SPACE["k"] = {"_type": "choice", "_value": [3, 5, 7]}
SPACE["lr"] = {"_type": "loguniform", "_value": [1e-4, 1e-1]}


def latency(p: dict) -> float:
    """A device whose latency grows with width and kernel, like a real one."""
    return sum(p[f"w{i}"] for i in range(4)) * p["k"] / 60.0


def accuracy(p: dict) -> float:
    """Wider is better with diminishing returns; the learning rate has an optimum at 1e-2."""
    return sum(np.log(p[f"w{i}"]) for i in range(4)) / 17 + (p["k"] == 5) * 0.05 - 0.1 * abs(np.log10(p["lr"]) + 2)


class CountingProfiler:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params: dict) -> dict:
        self.calls += 1
        return {"latency_ms": latency(params)}


def run(seed: int, budget: int, profiler=None, random_search: bool = False):
    space = SearchSpace(SPACE)
    engine = GenSynth(space, Objective("accuracy"), Requirements({"latency_ms": {"max": 10.0}}),
                      profiler=profiler, seed=seed, population_size=8)
    rng = np.random.default_rng(seed)
    best, trained_feasible = -np.inf, 0
    for _ in range(budget):
        arch = Generator(space).sample(rng) if random_search else engine.ask()
        p = space.to_parameters(arch)
        feasible = latency(p) <= 10.0
        trained_feasible += feasible
        if feasible:
            best = max(best, accuracy(p))
        if not random_search:
            engine.tell(arch, {"accuracy": accuracy(p), "latency_ms": latency(p)})
    return engine, best, trained_feasible / budget


def test_engine_does_not_import_nni():
    code = ("import sys, nni_gensynth.engine.gensynth, nni_gensynth.engine.objective; "
            "assert not any(m == 'nni' or m.startswith('nni.') for m in sys.modules), 'nni imported'; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_measure_before_train_keeps_training_feasible_within_the_call_budget():
    profiler = CountingProfiler()
    engine, best, feasible_fraction = run(seed=0, budget=60, profiler=profiler)
    assert feasible_fraction >= 0.9
    assert profiler.calls <= 4 * 60
    assert engine.profiler_calls == profiler.calls


def test_gensynth_beats_random_search_at_equal_budget():
    ours = [run(seed, 48, profiler=CountingProfiler())[1] for seed in range(4)]
    random = [run(seed, 48, random_search=True)[1] for seed in range(4)]
    assert np.median(ours) > np.median(random)


def test_cycles_move_the_generator_toward_what_works():
    engine, _, _ = run(seed=1, budget=48, profiler=CountingProfiler())
    space = engine.space
    k = space.index[("k",)]
    assert len(engine.cycles) == 6
    # under 10 ms, kernel 3 leaves room for wider layers, which beats kernel 5's bonus
    assert engine.generator.probabilities(k)[0] > 0.5
    assert engine.cycles[-1].entropy < engine.cycles[0].entropy
    # the diversity floor: every option keeps a share
    for i, logits in engine.generator.logits.items():
        assert engine.generator.probabilities(i).min() >= engine.generator.min_share / len(logits) - 1e-9


def test_taught_generator_produces_many_distinct_feasible_networks():
    profiler = CountingProfiler()
    engine, _, _ = run(seed=2, budget=40, profiler=profiler)
    made = engine.generate(12)
    assert len(made) == 12 and len(set(made)) == 12
    for arch in made:
        assert latency(engine.space.to_parameters(arch)) <= 10.0


def test_generate_rejects_nonsense():
    engine, _, _ = run(seed=0, budget=2, profiler=CountingProfiler())
    with pytest.raises(ValueError, match="n must be"):
        engine.generate(0)


def test_profiler_failures_do_not_stop_the_search():
    def flaky(params: dict) -> dict:
        if params["k"] == 7:
            raise ConnectionError("device went away")
        return {"latency_ms": latency(params)}

    space = SearchSpace(SPACE)
    engine = GenSynth(space, Objective("accuracy"), Requirements({"latency_ms": {"max": 10.0}}),
                      profiler=flaky, seed=0, population_size=4)
    for _ in range(12):
        arch = engine.ask()
        p = space.to_parameters(arch)
        engine.tell(arch, {"accuracy": accuracy(p), "latency_ms": latency(p)})
    assert len(engine.records) == 12


def test_probe_responses_move_the_generator_and_the_ablation_ignores_them():
    """Trials whose probes say "16 channels carry the importance" teach θ_G to narrow the layer."""
    space = SearchSpace({"width": {"_type": "quniform", "_value": [8, 64, 8]},
                         "k": {"_type": "choice", "_value": [3, 5]}})
    means = {}
    for use in (True, False):
        engine = GenSynth(space, Objective("accuracy"), seed=0, population_size=4, use_responses=use)
        for _ in range(24):
            arch = engine.ask()
            p = space.to_parameters(arch)
            engine.tell(arch, {"accuracy": 0.9 + 0.001 * p["k"],
                               "responses": '{"width": {"target": 16, "weight": 1.0}, "nope": {"target": 1}}'})
        means[use] = engine.generator.mean[space.index[("width",)]]
    target = space.decisions[0].to_unit(16)
    assert abs(means[False] - target) > abs(means[True] - target) + 0.1  # moved toward 16 channels
