"""The tuners compared, by name: each factory takes a seed and returns a fresh nni.tuner.Tuner."""
from __future__ import annotations

from typing import Callable

import numpy as np
from nni.tuner import Tuner

from .data import LATENCY_LIMIT_MS

PROFILER = "benchmarks.nb201_lib.device:lookup_latency"
CONSTRAINTS = {"latency_ms": {"max": LATENCY_LIMIT_MS}}


def nni_random(seed: int) -> Tuner:
    from nni.algorithms.hpo.random_tuner import RandomTuner
    return RandomTuner(seed=seed)


def nni_tpe(seed: int) -> Tuner:
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    return TpeTuner(optimize_mode="maximize", seed=seed)


def nni_tpe_default_mode(seed: int) -> Tuner:
    """Diagnostic: TpeTuner's optimize_mode defaults to 'minimize' (it then minimizes accuracy)."""
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    return TpeTuner(seed=seed)


def nni_evolution(seed: int) -> Tuner:
    """NNI's EvolutionTuner, defaults (population_size=32), made reproducible.

    It draws its first population from an unseeded np.random.RandomState in update_search_space and
    uses the global `random` module for selection/mutation. The harness seeds `random` per run; here
    the initial population is redrawn from a RandomState(seed). Its algorithm is untouched.
    """
    from nni.algorithms.hpo.evolution_tuner import EvolutionTuner

    class SeededEvolutionTuner(EvolutionTuner):
        def update_search_space(self, search_space):
            super().update_search_space(search_space)
            self.random_state = np.random.RandomState(seed)
            self.population = []
            for _ in range(self.population_size):
                self._random_generate_individual()

    return SeededEvolutionTuner(optimize_mode="maximize")


def optuna_tpe(seed: int) -> Tuner:
    from .optuna_tpe import OptunaConstrainedTPETuner
    return OptunaConstrainedTPETuner(optimize_mode="maximize", objective="accuracy",
                                     constraints=CONSTRAINTS, seed=seed)


def measure_first_random(seed: int) -> Tuner:
    from .measure_first import MeasureFirstRandomTuner
    return MeasureFirstRandomTuner(profiler=PROFILER, constraints=CONSTRAINTS, seed=seed)


def measure_first_re(seed: int, profiler: str = PROFILER) -> Tuner:
    from .measure_first import MeasureFirstEvolutionTuner
    return MeasureFirstEvolutionTuner(profiler=profiler, constraints=CONSTRAINTS, seed=seed,
                                      population_size=20, tournament_size=5)


def gensynth(seed: int, profiler: str = PROFILER) -> Tuner:
    from nni_gensynth.tuner import GenSynthTuner
    return GenSynthTuner(optimize_mode="maximize", objective="accuracy", constraints=CONSTRAINTS,
                         profiler=profiler, seed=seed)


ADDITIVE_KERNEL_SHARE = 0.6  # the share tried (benchmarks/NB201.md, "An additive kernel term")


def _gensynth_adjusted(seed: int, adjust: Callable[[object], None]) -> Tuner:
    """Variant: `gensynth` whose engine `adjust(engine)` changes once the search space has
    arrived (benchmark diagnostics only: benchmarks/NB201.md)."""
    tuner = gensynth(seed)
    update_search_space = tuner.update_search_space

    def update_then_adjust(search_space) -> None:
        update_search_space(search_space)
        adjust(tuner._engine)

    tuner.update_search_space = update_then_adjust
    return tuner


def _set_additive_share(engine: object) -> None:
    inquisitor = engine.inquisitor
    for model in (inquisitor.u_model, *inquisitor.metric_models.values(), *inquisitor.objective_models.values()):
        model.additive_share = ADDITIVE_KERNEL_SHARE


def gensynth_additive_kernel(seed: int) -> Tuner:
    """Variant: GenSynth with an additive term in its surrogates' kernel (share ADDITIVE_KERNEL_SHARE
    instead of the engine's ADDITIVE_SHARE); everything else as `gensynth`."""
    return _gensynth_adjusted(seed, _set_additive_share)


# -- multi-objective (benchmarks/nb201_multi.py): accuracy up, Pi 4 latency down, latency <= 25 ms --
MULTI_OBJECTIVES = (("accuracy", "maximize"), ("latency_ms", "minimize"))
HV_REFERENCE = (80.0, LATENCY_LIMIT_MS)  # (accuracy %, latency ms): the hypervolume's reference point


def gensynth_multi(seed: int) -> Tuner:
    from nni_gensynth.tuner import GenSynthTuner
    return GenSynthTuner(objectives=[{metric: direction[:3]} for metric, direction in MULTI_OBJECTIVES],
                         reference={"accuracy": HV_REFERENCE[0]}, constraints=CONSTRAINTS, profiler=PROFILER,
                         seed=seed)


def optuna_nsga2(seed: int) -> Tuner:
    from .multi_tuners import OptunaMultiObjectiveTuner
    return OptunaMultiObjectiveTuner("nsga2", MULTI_OBJECTIVES, CONSTRAINTS, seed=seed)


def optuna_motpe(seed: int) -> Tuner:
    from .multi_tuners import OptunaMultiObjectiveTuner
    return OptunaMultiObjectiveTuner("tpe", MULTI_OBJECTIVES, CONSTRAINTS, seed=seed)


def measure_first_re_scalarised(seed: int) -> Tuner:
    from .multi_tuners import ScalarisedEvolutionTuner
    return ScalarisedEvolutionTuner(PROFILER, CONSTRAINTS, HV_REFERENCE, seed=seed)


def _engine_tweaked(seed: int, **attributes) -> Tuner:
    """Variant: `gensynth` with attributes of its engine set (benchmarks/NB201.md, "Fewer random
    trainings, a larger pool")."""
    def set_attributes(engine: object) -> None:
        for name, value in attributes.items():
            setattr(engine, name, value)

    return _gensynth_adjusted(seed, set_attributes)


def _initial_random(n: int) -> Callable[[int], Tuner]:
    """`gensynth` ranking at random for its first `n` trainings (the engine: min(population_size, 10))."""
    return lambda seed: _engine_tweaked(seed, _n_initial=lambda: n)


TUNERS: dict[str, Callable[[int], Tuner]] = {
    "gensynth": gensynth,
    "mf-re": measure_first_re,
    "optuna-tpe": optuna_tpe,
    "mf-random": measure_first_random,
    "nni-random": nni_random,
    "nni-evolution": nni_evolution,
    "nni-tpe": nni_tpe,
    "nni-tpe-default-mode": nni_tpe_default_mode,
    "gensynth-additive-kernel": gensynth_additive_kernel,
    "gensynth-pool-4000": lambda seed: _engine_tweaked(seed, pool_size=4000),
    **{f"gensynth-init{n}": _initial_random(n) for n in (3, 5, 7, 15)},
    "gensynth-multi": gensynth_multi,
    "optuna-nsga2": optuna_nsga2,
    "optuna-motpe": optuna_motpe,
    "mf-re-scalarised": measure_first_re_scalarised,
}
MULTI_ONLY = ("gensynth-multi", "optuna-nsga2", "optuna-motpe", "mf-re-scalarised")  # searchers of a front
MULTI_TUNERS = [*MULTI_ONLY, "mf-random", "gensynth"]  # nb201_multi.py's default line-up
DIAGNOSTIC = ("nni-tpe-default-mode", "gensynth-additive-kernel", "gensynth-pool-4000",
              *(f"gensynth-init{n}" for n in (3, 5, 7, 15)))  # run only when named
DEFAULT_TUNERS = [name for name in TUNERS if name not in DIAGNOSTIC and name not in MULTI_ONLY]
LABELS = {
    "gensynth": "GenSynth",
    "mf-re": "measure-first RE",
    "optuna-tpe": "Optuna TPE (constraints)",
    "mf-random": "measure-first random",
    "nni-random": "NNI Random",
    "nni-evolution": "NNI Evolution",
    "nni-tpe": "NNI TPE",
    "nni-tpe-default-mode": "NNI TPE (default optimize_mode)",
    "gensynth-additive-kernel": "GenSynth, additive kernel term",
    "gensynth-pool-4000": "GenSynth, pool of 4,000",
    **{f"gensynth-init{n}": f"GenSynth, {n} random trainings" for n in (3, 5, 7, 15)},
    "gensynth-multi": "GenSynth multi-objective",
    "optuna-nsga2": "Optuna NSGA-II (constraints)",
    "optuna-motpe": "Optuna MO-TPE (constraints)",
    "mf-re-scalarised": "measure-first RE, Chebyshev",
}


def make_tuner(name: str, seed: int) -> Tuner:
    if name not in TUNERS:
        raise ValueError(f"unknown tuner {name!r}; choose from {sorted(TUNERS)}")
    return TUNERS[name](seed)
