"""Baselines that measure before they train: random search and regularized evolution.

Both are NNI tuners over `choice` search spaces. Each proposal is profiled first (measurements are
cached per architecture, so a repeated proposal costs no call) and handed out for training only if it
meets the requirements; rejected proposals are resampled. They obey GenSynth's profiler-call rule:
on average at most `max_calls_per_training` calls per training; when that allowance is spent, the next
new proposal is handed out unmeasured (it may turn out infeasible, and counts against the tuner).
Architectures already handed out are never proposed again (NNI's RegularizedEvolution dedup=True).
"""
from __future__ import annotations

import random
from collections import deque
from typing import Any, Mapping

from nni.tuner import Tuner
from nni.utils import extract_scalar_reward

from .requirements import check_constraints, load_profiler, meets

Arch = tuple  # one chosen value per search-space key, in key order

MAX_PROPOSALS_PER_SUGGESTION = 10_000


class MeasureFirstTuner(Tuner):
    """Common part: search space, profiler cache and call allowance, dedup. Subclasses propose."""

    def __init__(self, profiler: str, constraints: Mapping[str, Mapping[str, float]] | None = None,
                 seed: int | None = None, max_calls_per_training: float = 4.0):
        self.profiler = profiler
        self.constraints = check_constraints(constraints or {"latency_ms": {"max": 25.0}})
        self.seed = seed
        if not max_calls_per_training >= 1:
            raise ValueError(f"max_calls_per_training must be >= 1, got {max_calls_per_training!r}")
        self.max_calls_per_training = float(max_calls_per_training)
        self._profile = load_profiler(profiler)
        self._rng = random.Random(seed)
        self._keys: list[str] = []
        self._choices: list[list[Any]] = []
        self._measured: dict[Arch, bool] = {}  # architecture -> meets the requirements
        self._handed_out: set[Arch] = set()
        self._pending: dict[int, Arch] = {}
        self.profiler_calls = 0
        self.unmeasured_suggestions = 0

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        keys, choices = [], []
        for key, spec in search_space.items():
            if not isinstance(spec, Mapping) or spec.get("_type") != "choice":
                raise ValueError(f"{type(self).__name__} supports only 'choice' parameters; {key!r} is {spec!r}")
            keys.append(key)
            choices.append(list(spec["_value"]))
        self._keys, self._choices = keys, choices

    # --- NNI Tuner API --------------------------------------------------------------------------
    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        if not self._keys:
            raise RuntimeError("update_search_space must be called before generate_parameters")
        allowance = self.max_calls_per_training * (len(self._handed_out) + 1) - self.profiler_calls
        for _ in range(MAX_PROPOSALS_PER_SUGGESTION):
            arch = self._propose()
            if arch in self._handed_out:
                continue
            if arch not in self._measured:
                if allowance < 1:
                    self.unmeasured_suggestions += 1
                    return self._hand_out(parameter_id, arch)
                self._measured[arch] = meets(self._profile(self._parameters(arch)), self.constraints)
                self.profiler_calls += 1
                allowance -= 1
            if self._measured[arch]:
                return self._hand_out(parameter_id, arch)
        raise RuntimeError(f"{type(self).__name__}: no new proposal in {MAX_PROPOSALS_PER_SUGGESTION} tries "
                           "(search space exhausted?)")

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        arch = self._pending.pop(parameter_id, None) or self._arch(parameters)
        self._observe(arch, extract_scalar_reward(value))

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        self._pending.pop(parameter_id, None)

    # --- helpers --------------------------------------------------------------------------------
    def _hand_out(self, parameter_id: int, arch: Arch) -> dict[str, Any]:
        self._handed_out.add(arch)
        self._pending[parameter_id] = arch
        return self._parameters(arch)

    def _parameters(self, arch: Arch) -> dict[str, Any]:
        return dict(zip(self._keys, arch))

    def _arch(self, parameters: Mapping[str, Any]) -> Arch:
        return tuple(parameters[key] for key in self._keys)

    def _random_arch(self) -> Arch:
        return tuple(self._rng.choice(values) for values in self._choices)

    def _propose(self) -> Arch:
        raise NotImplementedError

    def _observe(self, arch: Arch, reward: float) -> None:
        """A trained architecture's reward (higher is better)."""


class MeasureFirstRandomTuner(MeasureFirstTuner):
    """Uniform random proposals; trains only those that measure within the requirements."""

    def _propose(self) -> Arch:
        return self._random_arch()


class MeasureFirstEvolutionTuner(MeasureFirstTuner):
    """Regularized (aging) evolution, Real et al. 2019, with measure-before-train filtering.

    The population is the last `population_size` trained architectures; until it is full, proposals
    are uniform random. Then a parent is the best of `tournament_size` members drawn at random and the
    child changes one randomly chosen parameter to a different value (the NAS-Bench-201 REA mutation).
    """

    def __init__(self, profiler: str, constraints: Mapping[str, Mapping[str, float]] | None = None,
                 seed: int | None = None, max_calls_per_training: float = 4.0,
                 population_size: int = 20, tournament_size: int = 5):
        super().__init__(profiler, constraints, seed, max_calls_per_training)
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"need 1 <= tournament_size ({tournament_size}) <= population_size ({population_size})")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self._population: deque[tuple[Arch, float]] = deque(maxlen=population_size)

    def _propose(self) -> Arch:
        if len(self._population) < self.population_size:
            return self._random_arch()
        contestants = self._rng.sample(list(self._population), self.tournament_size)
        parent = max(contestants, key=lambda member: member[1])[0]
        child = list(parent)
        position = self._rng.choice([i for i, values in enumerate(self._choices) if len(values) > 1])
        child[position] = self._rng.choice([v for v in self._choices[position] if v != parent[position]])
        return tuple(child)

    def _observe(self, arch: Arch, reward: float) -> None:
        self._population.append((arch, reward))  # deque(maxlen) drops the oldest: aging
