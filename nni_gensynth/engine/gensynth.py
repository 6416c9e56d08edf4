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

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
from threadpoolctl import ThreadpoolController

from .generator import Generator
from .inquisitor import Inquisitor, Record
from .objective import Objective, Requirements
from .space import Architecture, SearchSpace

_logger = logging.getLogger("nni_gensynth.engine")

Profiler = Callable[[dict], Mapping[str, float]]

# A trial's probe responses travel in its metric dict under this key, as a dict or a JSON
# string: {decision name: {"target": value in the decision's domain, "weight": 0..1}}.
RESPONSES_KEY = "responses"


def parse_responses(raw: Any) -> Optional[dict]:
    """Probe responses from a reported value (dict or JSON text); None when absent or unusable."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            _logger.warning("probe responses are not valid JSON; ignored")
            return None
    return dict(raw) if isinstance(raw, Mapping) and raw else None

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
                 use_responses: bool = True,
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
        self.use_responses = use_responses
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
        self._asks = 0
        self._results_in_cycle = 0
        self._cycle_started = time.monotonic()
        self._exhausted_cursor = 0
        self._size = space.size()
        self._data_version = 0  # bumped by every result and measurement
        self._excluded: set[bytes] = set()  # value rows never to propose again
        self._measured_ok: set[bytes] = set()  # value rows measured to meet the requirements
        self._conditioned_on = -1  # data version θ_I was last conditioned on

    # -- the loop -------------------------------------------------------------------------
    @_single_threaded
    def ask(self) -> Architecture:
        """The next network to train (marked pending until `tell`)."""
        self._asks += 1
        arch = self._choose()
        self.pending.add(arch)
        self._exclude(arch)
        return arch

    @_single_threaded
    def tell(self, arch: Architecture, metrics: Optional[Mapping[str, Any]]) -> None:
        """Record the result of training `arch`; None (or a result without U) is a failure.

        A second result for the same network (a late metric after NNI reported the trial ended,
        or a re-proposal of a used-up finite space) replaces the first and does not count
        toward the cycle again."""
        counted = arch in self.records
        self._record(arch, metrics)
        if counted:
            return
        self._results_in_cycle += 1
        if self._results_in_cycle >= self.population_size:
            self._end_cycle()

    def _record(self, arch: Architecture, metrics: Optional[Mapping[str, Any]]) -> None:
        self.pending.discard(arch)
        merged = dict(self.measurements.get(arch, {}))
        score = None
        responses = None
        if metrics is not None:
            merged.update({k: v for k, v in metrics.items() if k != RESPONSES_KEY})
            score = self.objective.score(merged)
            responses = parse_responses(metrics.get(RESPONSES_KEY))
        record = self.records.get(arch) or Record(arch)
        record.responses = responses
        if score is None:
            self.failed.add(arch)
        else:
            self.failed.discard(arch)
        record.score, record.metrics = score, merged
        record.feasible = self.requirements.is_met(merged) if score is not None else False
        self.records[arch] = record
        self._exclude(arch)
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
        self._remember_measurement(arch, clean)
        self._data_version += 1
        return clean

    def _remember_measurement(self, arch: Architecture, measured: dict) -> None:
        self.measurements[arch] = measured
        if self._pre_training_feasible(measured):
            self._measured_ok.add(self.space.values_row(arch).tobytes())
        else:
            self._exclude(arch)

    def _pre_training_feasible(self, measured: Mapping[str, Any]) -> bool:
        return self.requirements.is_met(measured, only_known=True) is not False

    # -- choosing -----------------------------------------------------------------------------
    def _choose(self) -> Architecture:
        if self.prototype is not None and not self.records and not self.pending:
            if self._screen(self.prototype):
                return self.prototype
        rows = self._pool_rows()
        if len(rows) == 0:
            return self._repropose()
        order, p_feasible = self._rank(rows)
        if self.profiler is None or not self.requirements:
            return self.space.architecture(rows[order[0]])
        calls, allowance = 0, self._call_allowance()
        tried: set[int] = set()
        for j in order:
            arch = self.space.architecture(rows[j])
            if arch in self.measurements:
                return arch  # measured earlier and feasible (infeasible ones never enter the pool)
            if calls >= allowance:
                break
            calls += 1
            tried.add(int(j))
            measured = self.measure(arch)
            if measured is None or self._pre_training_feasible(measured):
                return arch
        # Out of measurements without a feasible candidate: train the unmeasured one most likely
        # to meet 1_r (not the best-ranked: its expected improvement does not help if it fails).
        untried = [j for j in range(len(rows)) if j not in tried]
        if not untried:
            return self.space.architecture(rows[order[0]])
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(len(order))
        best = max(untried, key=lambda j: (p_feasible[j], -rank[j]))
        return self.space.architecture(rows[best])

    def _call_allowance(self) -> int:
        """Profiler calls this request may make: the average stays within `max_profiler_calls`
        per request, and calls earlier requests did not need may be spent here (up to 3x)."""
        unused = self.max_profiler_calls * self._asks - self.profiler_calls
        return max(1, min(unused, 3 * self.max_profiler_calls))

    def _screen(self, arch: Architecture) -> bool:
        if self.profiler is None or not self.requirements:
            return True
        measured = self.measure(arch)
        return measured is None or self._pre_training_feasible(measured)

    def _exclude(self, arch: Architecture) -> None:
        """Keep `arch` out of future pools (proposed, trained, or measured infeasible)."""
        self._excluded.add(self.space.values_row(arch).tobytes())

    def _pool_rows(self) -> np.ndarray:
        """Distinct candidates never proposed and not measured infeasible, as value rows: samples
        of θ_G, and neighbours of the best feasible networks (half the pool once there are some)."""
        budget = self.pool_size
        elite = [self.space.values_row(a) for a in self._elite(5)]
        rows: list[np.ndarray] = []
        keys: set[bytes] = set()
        for _ in range(3):
            n_mutants = budget // 2 if elite else 0
            batch = [self.generator.sample_rows(budget - n_mutants, self.rng)]
            if n_mutants:
                parents = np.stack(elite)[self.rng.integers(len(elite), size=n_mutants)]
                n_changes = 1 + (self.rng.random(n_mutants) < 0.3)
                batch.append(self.generator.mutate_rows(parents, self.rng, n_changes))
            for row in np.vstack(batch):
                key = row.tobytes()
                if key not in keys and key not in self._excluded:
                    keys.add(key)
                    rows.append(row)
            if len(rows) >= budget // 4:
                break
        if not rows and self._size is not None and len(self._excluded) < self._size:
            # θ_G has concentrated on tried points: sweep the rest of a finite space
            for arch in self.space.enumerate(limit=200_000) or []:
                row = self.space.values_row(arch)
                if row.tobytes() not in self._excluded:
                    rows.append(row)
                    if len(rows) >= budget:
                        break
        return np.array(rows).reshape(len(rows), len(self.space.all_decisions))

    def _elite(self, k: int) -> list[Architecture]:
        scored = [r for r in self.records.values() if r.score is not None and r.feasible]
        scored.sort(key=lambda r: -r.score)
        return [r.arch for r in scored[:k]]

    def _n_initial(self) -> int:
        return min(self.population_size, 10)

    def _rank(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices ordered by the inquisitor's acquisition (random while data are scarce),
        and each row's probability of meeting 1_r."""
        x = self.space.features(rows)
        self._condition()
        p_feasible = self.inquisitor.feasibility(x)
        if self._measured_ok:
            for j, row in enumerate(rows):
                if row.tobytes() in self._measured_ok:
                    p_feasible[j] = 1.0
        trained = sum(1 for r in self.records.values() if r.score is not None)
        if trained < self._n_initial():
            acquisition = self.rng.random(len(rows)) * np.maximum(p_feasible, 1e-3)
        else:
            acquisition = self.inquisitor.expected_improvement(x) * p_feasible
            acquisition += 1e-9 * self.rng.random(len(rows))  # random tie-break
        return np.argsort(-acquisition), p_feasible

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
        delta = self.inquisitor.generator_delta(self.generator, list(self.records.values()), predicted,
                                                use_responses=self.use_responses)
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
        """Unseen networks the surrogates rank best among likely-feasible samples of θ_G."""
        if not self.inquisitor.u_model.fitted:
            return []
        rows = self._unique_samples(min(self.pool_size, 200), exclude_seen=True)
        order, likely = self._rank_by_prediction(rows)
        return [self.space.architecture(rows[j]) for j in order[:k] if likely[j]]

    def _unique_samples(self, n: int, exclude_seen: bool) -> np.ndarray:
        rows = self.generator.sample_rows(n, self.rng)
        keys: set[bytes] = set()
        keep = []
        for j, row in enumerate(rows):
            key = row.tobytes()
            if key not in keys and not (exclude_seen and key in self._excluded):
                keys.add(key)
                keep.append(j)
        return rows[keep]

    def _rank_by_prediction(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row order: likely feasible (P >= 0.5) first, then by predicted U; and that flag."""
        if len(rows) == 0:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=bool)
        self._condition()
        x = self.space.features(rows)
        mean, _ = self.inquisitor.predict_score(x)
        likely = self.inquisitor.feasibility(x) >= 0.5
        return np.lexsort((-mean, ~likely)), likely

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
        rows = self._unique_samples(max(50 * n, 200), exclude_seen=False)
        order, _ = self._rank_by_prediction(rows)
        candidates += [self.space.architecture(rows[j]) for j in order[: 40 * n]]
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
                         "responses": r.responses, "trained": r.score is not None}
                        for r in self.records.values()],
            "measurements": [{"parameters": self.space.to_parameters(a), "metrics": m}
                             for a, m in self.measurements.items()],
            "pending": [self.space.to_parameters(a) for a in self.pending],
            "cycles": [c.as_dict() for c in self.cycles],
            "profiler_calls": self.profiler_calls,
            "asks": self._asks,
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
        self.measurements = {}
        for m in state.get("measurements", []):
            self._remember_measurement(self.space.from_parameters(m["parameters"]), dict(m["metrics"]))
        self.records = {}
        for entry in state.get("records", []):
            metrics = dict(entry["metrics"], **{RESPONSES_KEY: entry.get("responses")}) if entry.get("trained") else None
            self._record(self.space.from_parameters(entry["parameters"]), metrics)
        self._results_in_cycle = int(state.get("results_in_cycle", 0))
        for params in state.get("pending", []):
            # proposed before the stop, result unknown: never proposed again (a late result,
            # or NNI's replay of finished trials on resume, is still learned through `tell`)
            self._exclude(self.space.from_parameters(params))
        self.cycles = [CycleStats(**c) for c in state.get("cycles", [])]
        self.profiler_calls = int(state.get("profiler_calls", 0))
        self._asks = int(state.get("asks", 0))
        self.rng.bit_generator.state = state["rng"]
