"""Multi-objective searchers for the front benchmark (benchmarks/nb201_multi.py), as NNI tuners.

- Optuna's NSGA-II and multi-objective TPE (the samplers an Optuna user picks for two objectives),
  with the latency requirement as `constraints_func`: they learn feasibility from trained results
  and never call a profiler.
- Measure-first regularized evolution on a scalarisation: `MeasureFirstEvolutionTuner` whose
  tournaments compare contestants by an augmented Chebyshev scalarisation of the two objectives
  with a weight drawn anew for each tournament (as ParEGO and MOEA/D spread a scalarising search
  over a front), the objectives normalised to the benchmark's reference box.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import optuna

from .measure_first import Arch, MeasureFirstEvolutionTuner
from .optuna_tpe import CONSTRAINTS_ATTR, OptunaTuner, constraint_values, quiet_sampler
from .requirements import check_constraints, violations

SAMPLERS = ("nsga2", "tpe")


class OptunaMultiObjectiveTuner(OptunaTuner):
    """Optuna study with one direction per objective, as an NNI tuner (ask/tell)."""

    def __init__(self, sampler: str, objectives: Sequence[tuple[str, str]],
                 constraints: Mapping[str, Mapping[str, float]], seed: int | None = None,
                 population_size: int = 20) -> None:
        super().__init__()
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.objectives = [(metric, direction) for metric, direction in objectives]
        self.constraints = check_constraints(constraints)
        if sampler == "nsga2":
            chosen = quiet_sampler(lambda: optuna.samplers.NSGAIISampler(
                population_size=population_size, constraints_func=constraint_values, seed=seed))
        else:
            chosen = quiet_sampler(lambda: optuna.samplers.TPESampler(constraints_func=constraint_values, seed=seed))
        self._study = optuna.create_study(directions=[d for _, d in self.objectives], sampler=chosen)

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        trial = self._trials.pop(parameter_id)
        if not isinstance(value, Mapping):
            raise TypeError(f"{type(self).__name__} needs a metric dict, got {value!r}")
        trial.set_user_attr(CONSTRAINTS_ATTR, violations(value, self.constraints))
        self._study.tell(trial, [float(value[metric]) for metric, _ in self.objectives])


class ScalarisedEvolutionTuner(MeasureFirstEvolutionTuner):
    """Measure-first RE whose tournaments rank by a randomly weighted Chebyshev scalarisation of
    (accuracy up, latency down) inside the reference box [accuracy_ref, best] x [0, latency_ref]."""

    def __init__(self, profiler: str, constraints: Mapping[str, Mapping[str, float]],
                 reference: tuple[float, float], seed: int | None = None, population_size: int = 20,
                 tournament_size: int = 5) -> None:
        super().__init__(profiler, constraints, seed, population_size=population_size,
                         tournament_size=tournament_size)
        self.reference = reference  # (accuracy %, latency ms)
        self._objectives: dict[Arch, tuple[float, float]] = {}

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        arch = self._pending.pop(parameter_id, None) or self._arch(parameters)
        accuracy, latency = float(value["accuracy"]), float(value["latency_ms"])
        self._objectives[arch] = (accuracy, latency)
        self._population.append((arch, 0.0))  # the score is drawn per tournament

    def _propose(self) -> Arch:
        if len(self._population) < self.population_size:
            return self._random_arch()
        weight = self._rng.random()
        contestants = self._rng.sample(list(self._population), self.tournament_size)
        parent = max(contestants, key=lambda member: self._scalarised(member[0], weight))[0]
        child = list(parent)
        position = self._rng.choice([i for i, values in enumerate(self._choices) if len(values) > 1])
        child[position] = self._rng.choice([v for v in self._choices[position] if v != parent[position]])
        return tuple(child)

    def _scalarised(self, arch: Arch, weight: float) -> float:
        """Augmented Chebyshev (larger is better) of the objectives normalised to the reference box."""
        accuracy, latency = self._objectives[arch]
        acc_ref, lat_ref = self.reference
        gains = ((accuracy - acc_ref) / max(100.0 - acc_ref, 1e-9), (lat_ref - latency) / lat_ref)
        weights = (weight, 1.0 - weight)
        return min(w * g for w, g in zip(weights, gains)) + 0.05 * sum(w * g for w, g in zip(weights, gains))
