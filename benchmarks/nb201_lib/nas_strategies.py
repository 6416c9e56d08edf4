"""The NAS strategies compared, by name: each factory takes a seed and returns a fresh NNI Strategy.

NNI's strategies as shipped, made to maximise accuracy and seeded; "+ filter" chains NNI's own
strategy with nni_gensynth's HardwareFilter on the same counted table device GenSynth measures on.
RegularizedEvolution uses the population of the tuner benchmark's measure-first RE (20, tournament
5) rather than NNI's default 100 / 25, which is nearly random search within 200 trainings.
"""
from __future__ import annotations

from typing import Callable

from nni.nas.strategy import Random, RegularizedEvolution, Strategy
from nni.nas.strategy.middleware import Chain
from nni.nas.strategy.hpo import TPE

from .data import LATENCY_LIMIT_MS

PROFILER = "benchmarks.nb201_lib.nas_space:lookup_sample_latency"
CONSTRAINTS = {"latency_ms": {"max": LATENCY_LIMIT_MS}}


def gensynth(seed: int) -> Strategy:
    from nni_gensynth.nas import GenSynthStrategy
    return GenSynthStrategy(objective="accuracy", constraints=CONSTRAINTS, profiler=PROFILER, seed=seed)


def regularized_evolution(seed: int) -> Strategy:
    return RegularizedEvolution(population_size=20, sample_size=5, seed=seed)


def random(seed: int) -> Strategy:
    return Random(seed=seed)


def tpe(seed: int) -> Strategy:
    return TPE(optimize_mode="maximize", seed=seed)


def filtered(make: Callable[[int], Strategy]) -> Callable[[int], Strategy]:
    def factory(seed: int) -> Strategy:
        from nni_gensynth.nas import HardwareFilter
        return Chain(make(seed), HardwareFilter(CONSTRAINTS, profiler=PROFILER))
    return factory


STRATEGIES: dict[str, Callable[[int], Strategy]] = {
    "gensynth": gensynth,
    "re-filter": filtered(regularized_evolution),
    "random-filter": filtered(random),
    "tpe-filter": filtered(tpe),
    "re": regularized_evolution,
    "random": random,
    "tpe": tpe,
}
LABELS = {
    "gensynth": "GenSynthStrategy",
    "re-filter": "RegularizedEvolution + filter",
    "random-filter": "Random + filter",
    "tpe-filter": "TPE + filter",
    "re": "RegularizedEvolution",
    "random": "Random",
    "tpe": "TPE",
}


def make_strategy(name: str, seed: int) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name](seed)
