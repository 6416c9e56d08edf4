"""GenSynth: the generator–inquisitor loop, free of NNI so it can be used and tested alone.

    max_G U(G(s))  subject to  1_r(G(s)) = 1  for all seeds s

`ask` returns the next network to train: the generator proposes a pool (samples of θ_G and
neighbours of the best networks), the inquisitor ranks it by expected improvement of U times
the probability of meeting 1_r, and — when a profiler is given — the top candidates are
measured on the device *before* training until one meets the requirements (at most
`max_profiler_calls` per request). `tell` records a result (or a failure). Every
`population_size` results close a cycle: the inquisitor refits θ_I and returns Δθ_G, which
the generator applies. `generate(n)` asks the taught generator for n distinct networks that
meet 1_r by measurement.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
from threadpoolctl import ThreadpoolController

from .generator import Generator
from .inquisitor import Inquisitor, Record, features
from .objective import Objective, Requirements
from .space import Architecture, SearchSpace

_logger = logging.getLogger("nni_gensynth.engine")

Profiler = Callable[[dict], Mapping[str, float]]

# The surrogates work on matrices of a few hundred rows: one BLAS thread is faster than two
# fighting over a shared CPU, and keeps the tuner from starving the trials beside it.
_BLAS = ThreadpoolController()


def _single_threaded(method: Callable) -> Callable:
    def wrapper(self: "GenSynth", *args: Any, **kwargs: Any) -> Any:
        with _BLAS.limit(limits=1, user_api="blas"):
            return method(self, *args, **kwargs)
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


@dataclass
class CycleStats:
    """One generator cycle, as logged and plotted."""

    cycle: int
    results: int
    best_u: Optional[float]
    feasible_fraction: float
    entropy: float
    delta_norm: float
    profiler_calls: int
    seconds: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class GenSynth:
    """The GenSynth engine over one search space."""

    def __init__(self, space: SearchSpace, objective: Objective = Objective(),
                 requirements: Optional[Requirements] = None, *, profiler: Optional[Profiler] = None,
                 prototype: Optional[Mapping[str, Any]] = None, population_size: int = 10,
                 seed: Optional[int] = None, max_profiler_calls: int = 4, pool_size: int = 300,
                 on_cycle: Optional[Callable[[CycleStats], None]] = None) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        if max_profiler_calls < 1:
            raise ValueError(f"max_profiler_calls must be at least 1, got {max_profiler_calls}")
        self.space = space
        self.objective = objective
        self.requirements = requirements or Requirements()
        self.profiler = profiler
        self.population_size = population_size
        self.max_profiler_calls = max_profiler_calls
        self.pool_size = pool_size
        self.on_cycle = on_cycle
        self.prototype = space.from_parameters(prototype) if prototype is not None else None
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.generator = Generator(space, self.prototype)
        self.inquisitor = Inquisitor(space, self.requirements)
        self.records: dict[Architecture, Record] = {}
        self.measurements: dict[Architecture, dict] = {}
        self.pending: set[Architecture] = set()
        self.failed: set[Architecture] = set()
        self.cycles: list[CycleStats] = []
        self.profiler_calls = 0
        self._results_in_cycle = 0
        self._cycle_started = time.monotonic()
        self._exhausted_cursor = 0
        self._size = space.size()
        self._data_version = 0  # bumped by every result and measurement
        self._conditioned_on = -1  # data version θ_I was last conditioned on

    # -- the loop -------------------------------------------------------------------------
    @_single_threaded
    def ask(self) -> Architecture:
        """The next network to train (marked pending until `tell`)."""
        arch = self._choose()
        self.pending.add(arch)
        return arch

    @_single_threaded
    def tell(self, arch: Architecture, metrics: Optional[Mapping[str, Any]]) -> None:
        """Record the result of training `arch`; None (or a result without U) is a failure."""
        self._record(arch, metrics)
        self._results_in_cycle += 1
        if self._results_in_cycle >= self.population_size:
            self._end_cycle()

    def _record(self, arch: Architecture, metrics: Optional[Mapping[str, Any]]) -> None:
        self.pending.discard(arch)
        merged = dict(self.measurements.get(arch, {}))
        score = None
        if metrics is not None:
            merged.update({k: v for k, v in metrics.items()})
            score = self.objective.score(merged)
        record = self.records.get(arch) or Record(arch)
        if score is None:
            self.failed.add(arch)
        else:
            self.failed.discard(arch)
        record.score, record.metrics = score, merged
        record.feasible = self.requirements.is_met(merged) if score is not None else False
        self.records[arch] = record
        self._data_version += 1

    def knows(self, arch: Architecture) -> bool:
        """Whether a result (or failure) for `arch` is already recorded."""
        return arch in self.records

    # -- measuring ----------------------------------------------------------------------------
    def measure(self, arch: Architecture) -> Optional[dict]:
        """Hardware metrics of `arch` from the profiler (cached); None when it cannot say."""
        if arch in self.measurements:
            return self.measurements[arch]
        if self.profiler is None:
            return None
        self.profiler_calls += 1
        try:
            result = self.profiler(self.space.to_parameters(arch))
        except Exception as exc:  # a profiler failure must not stop the search
            _logger.warning("profiler failed on %s: %s", arch.encode(), exc)
            return None
        if not isinstance(result, Mapping):
            _logger.warning("profiler returned %r (not a dict) for %s; ignored", result, arch.encode())
            return None
        clean = {k: v for k, v in result.items() if isinstance(k, str)}
        self.measurements[arch] = clean
        self._data_version += 1
        return clean

    def _pre_training_feasible(self, measured: Mapping[str, Any]) -> bool:
        return self.requirements.is_met(measured, only_known=True) is not False

    # -- choosing -----------------------------------------------------------------------------
    def _choose(self) -> Architecture:
        if self.prototype is not None and not self.records and not self.pending:
            if self._screen(self.prototype):
                return self.prototype
        pool = self._pool()
        if not pool:
            return self._repropose()
        ranking = self._rank(pool)
        calls = 0
        for arch in ranking:
            if self.profiler is None or not self.requirements:
                return arch
            if arch in self.measurements:
                if self._pre_training_feasible(self.measurements[arch]):
                    return arch
                continue
            if calls >= self.max_profiler_calls:
                break
            calls += 1
            measured = self.measure(arch)
            if measured is None or self._pre_training_feasible(measured):
                return arch
        # every measured candidate failed 1_r: train the best-ranked unmeasured one
        for arch in ranking:
            if arch not in self.measurements:
                return arch
        return ranking[0]

    def _screen(self, arch: Architecture) -> bool:
        if self.profiler is None or not self.requirements:
            return True
        measured = self.measure(arch)
        return measured is None or self._pre_training_feasible(measured)

    def _seen(self, arch: Architecture) -> bool:
        return arch in self.records or arch in self.pending

    def _pool(self) -> list[Architecture]:
        """Distinct unseen candidates: samples of θ_G plus neighbours of the best networks."""
        pool: dict[Architecture, None] = {}
        budget = self.pool_size
        elite = self._elite(5)
        attempts = 0
        while len(pool) < budget and attempts < budget * 3:
            attempts += 1
            if elite and attempts % 2 == 0:
                parent = elite[int(self.rng.integers(len(elite)))]
                cand = self.generator.mutate(parent, self.rng, n_changes=1 + int(self.rng.random() < 0.3))
            else:
                cand = self.generator.sample(self.rng)
            if not self._seen(cand) and not self._known_infeasible(cand):
                pool[cand] = None
        if not pool and self._size is not None and len(self.records) + len(self.pending) < self._size:
            # the distribution has concentrated; sweep the rest of a finite space
            for cand in self.space.enumerate(limit=200_000) or []:
                if not self._seen(cand):
                    pool[cand] = None
                    if len(pool) >= budget:
                        break
        return list(pool)

    def _known_infeasible(self, arch: Architecture) -> bool:
        measured = self.measurements.get(arch)
        return measured is not None and not self._pre_training_feasible(measured)

    def _elite(self, k: int) -> list[Architecture]:
        scored = [r for r in self.records.values() if r.score is not None and r.feasible]
        scored.sort(key=lambda r: -r.score)
        return [r.arch for r in scored[:k]]

    def _n_initial(self) -> int:
        return min(self.population_size, 10)

    def _rank(self, pool: list[Architecture]) -> list[Architecture]:
        """Pool ordered by the inquisitor's acquisition (random while data are scarce)."""
        x = features(self.space, pool)
        self._condition()
        p_feasible = self.inquisitor.feasibility(x)
        for j, arch in enumerate(pool):
            if arch in self.measurements:
                p_feasible[j] = 1.0 if self._pre_training_feasible(self.measurements[arch]) else 0.0
        trained = sum(1 for r in self.records.values() if r.score is not None)
        if trained < self._n_initial():
            acquisition = self.rng.random(len(pool)) * np.maximum(p_feasible, 1e-3)
        else:
            best = self._best_feasible_score()
            acquisition = self.inquisitor.expected_improvement(x, best) * p_feasible
            acquisition += 1e-9 * self.rng.random(len(pool))  # random tie-break
        order = np.argsort(-acquisition)
        return [pool[j] for j in order]

    def _best_feasible_score(self) -> Optional[float]:
        scores = [r.score for r in self.records.values() if r.score is not None and r.feasible]
        return max(scores) if scores else None

    def _condition(self) -> None:
        """Condition θ_I on everything known, without refitting hyperparameters."""
        if self._conditioned_on != self._data_version:
            self.inquisitor.refit(self._all_records(), optimize=False)
            self._conditioned_on = self._data_version

    def _all_records(self) -> list[Record]:
        """Trained records plus measured-only ones (they inform the requirement surrogates)."""
        records = list(self.records.values())
        for arch, measured in self.measurements.items():
            if arch not in self.records:
                records.append(Record(arch, None, dict(measured),
                                      self.requirements.is_met(measured, only_known=True)))
        return records

    def _repropose(self) -> Architecture:
        """Every point of a finite space has been tried: propose the best ones again, in turn."""
        ranked = sorted((r for r in self.records.values() if r.score is not None),
                        key=lambda r: (not r.feasible, -r.score))
        if not ranked:
            return self.generator.sample(self.rng)
        top = ranked[: max(1, min(len(ranked), self.population_size))]
        arch = top[self._exhausted_cursor % len(top)].arch
        self._exhausted_cursor += 1
        return arch

    # -- cycles -------------------------------------------------------------------------------
    def _end_cycle(self) -> None:
        self.inquisitor.refit(self._all_records(), optimize=True, rng=self.rng)
        self._conditioned_on = self._data_version
        predicted = self._predicted_elite()
        delta = self.inquisitor.generator_delta(self.generator, list(self.records.values()), predicted)
        self.generator.apply(delta)
        window = list(self.records.values())[-self._results_in_cycle:]
        stats = CycleStats(
            cycle=len(self.cycles) + 1,
            results=len(self.records),
            best_u=self.best_u(),
            feasible_fraction=(sum(1 for r in window if r.feasible) / len(window)) if window else 0.0,
            entropy=self.generator.entropy(),
            delta_norm=delta.norm(),
            profiler_calls=self.profiler_calls,
            seconds=time.monotonic() - self._cycle_started,
        )
        self.cycles.append(stats)
        self._results_in_cycle = 0
        self._cycle_started = time.monotonic()
        _logger.info("cycle %d: %d results, best U %s, feasible %.0f%%, generator entropy %.3f, |Δθ_G| %.3f, "
                     "%d profiler calls", stats.cycle, stats.results,
                     "n/a" if stats.best_u is None else f"{stats.best_u:.4g}", 100 * stats.feasible_fraction,
                     stats.entropy, stats.delta_norm, stats.profiler_calls)
        if self.on_cycle is not None:
            self.on_cycle(stats)

    def _predicted_elite(self, k: int = 6) -> list[Architecture]:
        """Unseen networks the surrogates rank best (mean U x P(feasible))."""
        if not self.inquisitor.u_model.fitted:
            return []
        pool = [self.generator.sample(self.rng) for _ in range(min(self.pool_size, 200))]
        pool = list(dict.fromkeys(a for a in pool if not self._seen(a)))
        if not pool:
            return []
        x = features(self.space, pool)
        mean, _ = self.inquisitor.predict_score(x)
        p = self.inquisitor.feasibility(x)
        order = np.argsort(-(np.where(p >= 0.5, mean, -np.inf)))
        return [pool[j] for j in order[:k] if p[j] >= 0.5]

    # -- results ------------------------------------------------------------------------------
    def best_u(self) -> Optional[float]:
        """Best U (in the user's orientation) among networks that meet 1_r."""
        best = self._best_feasible_score()
        if best is None:
            return None
        return best if self.objective.mode == "maximize" else -best

    def best(self, k: int = 5) -> list[Record]:
        """The k best trained networks that meet 1_r, best first."""
        feasible = [r for r in self.records.values() if r.score is not None and r.feasible]
        return sorted(feasible, key=lambda r: -r.score)[:k]

    @_single_threaded
    def generate(self, n: int, max_profiler_calls: Optional[int] = None) -> list[Architecture]:
        """n distinct networks from the taught generator that meet 1_r by measurement.

        Candidates are the best trained feasible networks and fresh samples of θ_G ranked by
        the surrogates; each is measured (when a profiler is set) before it is accepted.
        Returns fewer than n only when the call budget (default 20·n) runs out.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        budget = 20 * n if max_profiler_calls is None else max_profiler_calls
        chosen: list[Architecture] = []
        candidates = [r.arch for r in self.best(n)]
        samples = list(dict.fromkeys(self.generator.sample(self.rng) for _ in range(max(50 * n, 200))))
        if samples:
            self._condition()
            x = features(self.space, samples)
            mean, _ = self.inquisitor.predict_score(x)
            p = self.inquisitor.feasibility(x)
            order = np.lexsort((-mean, -(p >= 0.5)))  # likely feasible first, then by predicted U
            candidates += [samples[j] for j in order]
        calls = 0
        for arch in dict.fromkeys(candidates):
            if len(chosen) >= n:
                break
            if self.profiler is not None and self.requirements and arch not in self.measurements:
                if calls >= budget:
                    break
                calls += 1
            if self._meets_requirements_now(arch):
                chosen.append(arch)
        return chosen

    def _meets_requirements_now(self, arch: Architecture) -> bool:
        known = dict(self.records[arch].metrics or {}) if arch in self.records else {}
        if self.profiler is not None and self.requirements:
            measured = self.measure(arch)
            if measured is None:
                return False
            known.update(measured)
        if not self.requirements:
            return True
        return self.requirements.is_met(known, only_known=True) is True

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything learned, as JSON-able data (no pickles): θ_G, θ_I, results, measurements."""
        return {
            "version": 1,
            "generator": self.generator.state_dict(),
            "u_model": self.inquisitor.u_model.hyperparameters(),
            "metric_models": {m: g.hyperparameters() for m, g in self.inquisitor.metric_models.items()},
            "records": [{"parameters": self.space.to_parameters(r.arch), "metrics": r.metrics,
                         "trained": r.score is not None} for r in self.records.values()],
            "measurements": [{"parameters": self.space.to_parameters(a), "metrics": m}
                             for a, m in self.measurements.items()],
            "cycles": [c.as_dict() for c in self.cycles],
            "profiler_calls": self.profiler_calls,
            "results_in_cycle": self._results_in_cycle,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state_dict()` output (same search space): learning resumes, not restarts."""
        if state.get("version") != 1:
            raise ValueError(f"unsupported GenSynth state version {state.get('version')!r}")
        self.generator.load_state_dict(state["generator"])
        self.inquisitor.u_model.set_hyperparameters(state["u_model"])
        for metric, hp in state.get("metric_models", {}).items():
            if metric in self.inquisitor.metric_models:
                self.inquisitor.metric_models[metric].set_hyperparameters(hp)
        self.measurements = {self.space.from_parameters(m["parameters"]): dict(m["metrics"])
                             for m in state.get("measurements", [])}
        self.records = {}
        for entry in state.get("records", []):
            self._record(self.space.from_parameters(entry["parameters"]),
                         entry["metrics"] if entry.get("trained") else None)
        self._results_in_cycle = int(state.get("results_in_cycle", 0))
        self.cycles = [CycleStats(**c) for c in state.get("cycles", [])]
        self.profiler_calls = int(state.get("profiler_calls", 0))
        self.rng.bit_generator.state = state["rng"]
