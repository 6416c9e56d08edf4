"""Optuna's TPE with constraints_func, as an NNI tuner (ask/tell).

It sees only what a trial reports: the objective and the measured metrics after training. The
constraint values (e.g. latency_ms - 25) are stored on the trial and read back by constraints_func,
so Optuna learns feasibility from trained results; it never calls a profiler.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import optuna
from nni.tuner import Tuner

from .requirements import check_constraints, violations

CONSTRAINTS_ATTR = "constraints"


def constraint_values(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Optuna's `constraints_func`: the violations stored on the trial (<= 0 when met)."""
    return trial.user_attrs[CONSTRAINTS_ATTR]


class OptunaTuner(Tuner):
    """An Optuna study as an NNI tuner over `choice` spaces (ask/tell); subclasses make the study
    and tell it a result. A trial that ends without a result is told as failed."""

    def __init__(self) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {}
        self._trials: dict[int, optuna.trial.Trial] = {}

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        distributions = {}
        for key, spec in search_space.items():
            if not isinstance(spec, Mapping) or spec.get("_type") != "choice":
                raise ValueError(f"{type(self).__name__} supports only 'choice' parameters; {key!r} is {spec!r}")
            distributions[key] = optuna.distributions.CategoricalDistribution(list(spec["_value"]))
        self._distributions = distributions

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        if not self._distributions:
            raise RuntimeError("update_search_space must be called before generate_parameters")
        trial = self._study.ask(self._distributions)
        self._trials[parameter_id] = trial
        return dict(trial.params)

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        trial = self._trials.pop(parameter_id, None)
        if trial is not None:  # ended without a result
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)


def quiet_sampler(make: Any) -> Any:
    """`make()`, with Optuna's warnings that `constraints_func` is experimental or deprecated
    (FutureWarning since 5.0; it still does its job) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return make()


class OptunaConstrainedTPETuner(OptunaTuner):
    def __init__(self, optimize_mode: str = "maximize", objective: str = "accuracy",
                 constraints: Mapping[str, Mapping[str, float]] | None = None, seed: int | None = None):
        super().__init__()
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        self.optimize_mode = optimize_mode
        self.objective = objective
        self.constraints = check_constraints(constraints or {"latency_ms": {"max": 25.0}})
        self.seed = seed
        sampler = quiet_sampler(lambda: optuna.samplers.TPESampler(constraints_func=constraint_values, seed=seed))
        self._study = optuna.create_study(direction=optimize_mode, sampler=sampler)

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        trial = self._trials.pop(parameter_id)
        if not isinstance(value, Mapping):
            raise TypeError(f"{type(self).__name__} needs a metric dict with {self.objective!r} and "
                            f"{sorted(self.constraints)}, got {value!r}")
        trial.set_user_attr(CONSTRAINTS_ATTR, violations(value, self.constraints))
        self._study.tell(trial, float(value[self.objective]))
