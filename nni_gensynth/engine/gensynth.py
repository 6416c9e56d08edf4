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

A network is trained once: when the profiler names what training a candidate would be (its
`training_key`: the layers built and the recipe), a candidate that trains as one already
proposed or trained — two parameter dicts that build the same layers, e.g. a different pair of
prototype blocks kept at equal widths — is skipped (`twins_skipped`), not trained again.

Nothing a trial or a device sends can make `ask` or `tell` raise (an exception in an NNI tuner
callback kills the dispatcher thread and hangs the experiment): results and measurements are
validated where they enter (`metrics.clean_metrics`), a result without a usable U is a recorded
failure, and a surrogate that fails to fit is logged and skipped (`_safely`). `state_dict` is
JSON without NaN; `load_state_dict` loads what is valid of a damaged state (see `state.py`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, TypeVar, Union

import numpy as np
from threadpoolctl import ThreadpoolController

from .front import (EHVI_SAMPLES, Objectives, expected_hv_improvement, front_points, pareto_fitness, sobol_normal,
                    spread_order)
from .generator import Generator
from .hypervolume import hypervolume, non_dominated
from .inquisitor import Inquisitor, Record, categorical_mask
from .metrics import MAX_METRICS, RESPONSES_KEY, TRAINING_KEY, clean_metrics, finite_float, parse_responses, short_repr
from .objective import Objective, Requirements
from .space import Architecture, ChoiceDecision, SearchSpace
from .state import StateError, json_safe
from .surrogate import weighted_distance

FRONT_PARENTS = 12  # multi-objective mode: front networks, spread along it, whose neighbours join the pool
MAX_FAILURES_AVOIDED = 200  # failures a proposal keeps away from, at most
POOL_REDRAWS = 8  # pools drawn for one proposal when every candidate in one turns out a twin or infeasible
NEAR_FAILURE = 0.1  # a near copy of a failed network: e.g. one continuous value within 0.32 (unit scale)

_logger = logging.getLogger("nni_gensynth.engine")

Profiler = Callable[[dict], Mapping[str, float]]
T = TypeVar("T")

STATE_VERSION = 1

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
    trust: dict = field(default_factory=dict)  # θ_I's trust in probe responses per decision kind
    hypervolume: Optional[float] = None  # multi-objective mode: the feasible front's, oriented

    def as_dict(self) -> dict:
        return dict(self.__dict__, trust=dict(self.trust))

    @classmethod
    def from_dict(cls, saved: Any) -> "CycleStats":
        """A cycle from `as_dict()` output; ValueError when a field is missing or not a number of its type."""
        if not isinstance(saved, Mapping):
            raise ValueError(f"a cycle must be an object, got {short_repr(saved)}")
        values: dict = {"trust": {k: float(v) for k, v in (saved.get("trust") or {}).items()
                                  if isinstance(k, str) and finite_float(v) is not None}
                        if isinstance(saved.get("trust"), Mapping) else {}}
        for f in dataclasses.fields(cls):
            if f.name == "trust":
                continue
            raw = saved.get(f.name)
            number = finite_float(raw)
            if number is None and not (f.name in ("best_u", "hypervolume") and raw is None):
                raise ValueError(f"cycle field {f.name!r} is {short_repr(raw)}, not a finite number")
            if f.type == "int" and number != int(number):
                raise ValueError(f"cycle field {f.name!r} is {raw!r}, not an integer")
            values[f.name] = None if number is None else (int(number) if f.type == "int" else number)
        return cls(**values)


class GenSynth:
    """The GenSynth engine over one search space."""

    def __init__(self, space: SearchSpace, objective: Union[Objective, Objectives] = Objective(),
                 requirements: Optional[Requirements] = None, *, profiler: Optional[Profiler] = None,
                 prototype: Optional[Mapping[str, Any]] = None, population_size: int = 10,
                 seed: Optional[int] = None, max_profiler_calls: int = 4, pool_size: int = 1000,
                 use_responses: bool = True,
                 on_cycle: Optional[Callable[[CycleStats], None]] = None) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        if max_profiler_calls < 1:
            raise ValueError(f"max_profiler_calls must be at least 1, got {max_profiler_calls}")
        self.space = space
        self.objective = objective  # one U, or several objectives (multi-objective mode: front.py)
        self.objectives = objective if isinstance(objective, Objectives) else None
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
        self.inquisitor = Inquisitor(space, self.requirements, self.objectives)
        self.records: dict[Architecture, Record] = {}
        self.measurements: dict[Architecture, dict] = {}
        self._measured_only: dict[Architecture, Record] = {}  # measured, not trained: θ_I's requirement data
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
        self._screening: set[bytes] = set()  # value rows handed out by to_screen, not yet measured
        self._screened_ok: set[bytes] = set()  # value rows screened ahead and measured to meet 1_r
        self.screened_ahead = 0  # measurements that came in through add_measurement
        self._measured_ok: dict[bytes, dict] = {}  # value rows measured to meet the requirements: figures
        self._finite_rows: Optional[np.ndarray] = None  # every value row of a finite space, once swept
        self._finite_index: dict[bytes, int] = {}  # and each one's place in it
        self._conditioned_on = -1  # data version θ_I was last conditioned on
        self._metric_keys = tuple(dict.fromkeys(objective.inputs + self.requirements.metrics))  # kept first
        self._draws: Optional[np.ndarray] = None  # multi-objective: the EHVI's standard-normal draws
        self._front_cache: tuple[int, Any] = (-1, None)  # multi-objective: (data version, _front())
        self._suggestion_cache: tuple[Any, list[np.ndarray]] = (None, [])  # ((data version, cycles), rows)
        self._probed = False  # whether any result carried probe responses (none do in plain HPO)
        self._claims: dict[str, Architecture] = {}  # training key -> the network proposed or trained under it
        self._twins: set[Architecture] = set()  # candidates skipped: they train as a claimed network
        self.twins_skipped = 0

    # -- the loop -------------------------------------------------------------------------
    @_single_threaded
    def ask(self) -> Architecture:
        """The next network to train (marked pending until `tell`).

        Never raises: should choosing fail (any exception, MemoryError included), the failure
        is logged and a sample of θ_G is proposed instead."""
        self._asks += 1
        arch = self._safely("choosing a candidate", self._choose, None)
        if arch is None:
            arch = self._fallback_proposal()
        self.pending.add(arch)
        self._exclude(arch)
        self._claim_training(arch)
        return arch

    @_single_threaded
    def tell(self, arch: Architecture, metrics: Any) -> None:
        """Record the result of training `arch` (proposed by `ask`). Never raises, whatever
        `metrics` holds.

        `metrics` is what the trial reported, as it came: a dict (`default`, `accuracy`,
        `latency_ms`, ..., probe `responses`), a bare number (read as `default`), JSON text of
        either, or None when the trial ended without a result. It is validated here by
        `clean_metrics`: finite numbers, bools and short texts are kept; NaN, ±inf,
        integers too large for a float, lists, nested dicts, oversized texts or dicts are
        dropped with a warning that names the key; `responses` is parsed within bounds.

        The result is a success when U can be computed from what is left together with the
        device measurements of `arch`; otherwise — None, garbage, a missing objective metric,
        NetScore from an accuracy above 100 % or a zero parameter count — it is recorded as a
        failure (in `failed`, with `score` None). Failures count toward the cycle too.

        A second result for the same network (a late metric after NNI reported the trial ended,
        or a re-proposal of a used-up finite space) replaces the first and does not count
        toward the cycle again.

        The `population_size`-th result of a cycle closes it: θ_I is refitted and Δθ_G applied
        (see `_learn`). A surrogate that cannot be refitted (a singular kernel, MemoryError) is
        logged and the previous θ_I kept; the cycle still closes."""
        counted = arch in self.records
        reported = clean_metrics(metrics, keep=self._metric_keys) if metrics is not None else None
        self._record(arch, reported)
        if counted:
            return
        self._results_in_cycle += 1
        if self._results_in_cycle >= self.population_size:
            self._end_cycle()

    def _record(self, arch: Architecture, reported: Optional[dict], scored: bool = True) -> None:
        """Store a result: `reported` is a clean metric dict (see `clean_metrics`), None when the
        trial gave none; with `scored` False it is a failure whatever it holds (a failed result
        read back from a saved state)."""
        self.pending.discard(arch)
        merged = dict(self.measurements.get(arch, {}))
        score = None
        responses = None
        if reported is not None:
            reported = dict(reported)
            responses = reported.pop(RESPONSES_KEY, None)
            merged.update(reported)
            if scored:
                score = self.objective.score(merged)
                if score is None:
                    _logger.warning("result for %s gives no usable U (%r): recorded as a failure",
                                    arch.encode(), self.objective.metric)
        record = self.records.get(arch) or Record(arch)
        record.responses = responses
        self._probed = self._probed or bool(responses)
        if score is None:
            self.failed.add(arch)
        else:
            self.failed.discard(arch)
        record.score, record.metrics = score, merged
        record.feasible = self.requirements.is_met(merged) if score is not None else False
        self.records[arch] = record
        self._measured_only.pop(arch, None)
        self._exclude(arch)
        self._claim_training(arch)
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
        return self._accept_measurement(arch, result)

    def _accept_measurement(self, arch: Architecture, result: Any) -> Optional[dict]:
        """Validate a profiler's answer for `arch` and remember it; None (logged) if it is not a dict."""
        if not isinstance(result, Mapping):
            _logger.warning("profiler returned %s (not a dict) for %s; ignored", short_repr(result), arch.encode())
            return None
        clean = clean_metrics(result, keep=self._metric_keys) or {}
        clean.pop(RESPONSES_KEY, None)
        self._remember_measurement(arch, clean)
        self._data_version += 1
        return clean

    # -- screening ahead: devices that would sit idle measure the next candidates ----------------
    @_single_threaded
    def to_screen(self, k: int = 1) -> list[Architecture]:
        """Up to `k` unmeasured candidates, best ranked first, for measurement devices that would
        otherwise sit idle (a farm with more device time than proposals need). Each is held back
        from proposals and from later calls until its measurement comes back through
        `add_measurement`; a measured candidate that meets the requirements joins every later
        pool with its figures known, so `ask` can propose it without a device call. These
        measurements do not count against `max_profiler_calls`.
        Never raises: a failure is logged and gives []."""
        if k < 1 or self.profiler is None or not self.requirements:
            return []
        return self._safely("choosing candidates to screen", lambda: self._to_screen(k), [])

    def _to_screen(self, k: int) -> list[Architecture]:
        rows = self._pool_rows(include_ready=False)
        if len(rows) == 0:
            return []
        unmeasured = np.array([row.tobytes() not in self._measured_ok for row in rows], dtype=bool)
        rows = rows[unmeasured]  # measured infeasible ones never enter a pool; feasible ones may
        if len(rows) == 0:  # θ_G samples only measured candidates: sweep the rest of the space
            rows = self._as_matrix(self._sweep(self.pool_size, *self._closed(), self._measured_ok))
        if len(rows) == 0:
            return []
        order, _, _ = self._rank(rows)
        chosen = [self.space.architecture(rows[j]) for j in order[:k]]
        self._screening.update(self.space.values_row(a).tobytes() for a in chosen)
        return chosen

    @_single_threaded
    def add_measurement(self, arch: Architecture, measured: Any) -> None:
        """A measurement of `arch` taken outside `ask` (see `to_screen`), validated like a
        profiler's answer; None means it could not be measured (its device failed) and releases
        it for later proposals. Anything else but a dict is logged and ignored. Never raises."""
        key = self.space.values_row(arch).tobytes()
        self._screening.discard(key)
        if measured is not None and arch not in self.measurements:
            self.screened_ahead += 1
            self._safely("adding a measurement", lambda: self._accept_measurement(arch, measured), None)
            if key in self._measured_ok:  # remembered, and meets the requirements
                self._screened_ok.add(key)

    def _remember_measurement(self, arch: Architecture, measured: dict) -> None:
        self.measurements[arch] = measured
        if arch not in self.records:
            self._measured_only[arch] = Record(arch, None, dict(measured),
                                               self.requirements.is_met(measured, only_known=True))
        if self._pre_training_feasible(measured):
            self._measured_ok[self.space.values_row(arch).tobytes()] = measured
        else:
            self._exclude(arch)

    def _pre_training_feasible(self, measured: Mapping[str, Any]) -> bool:
        return self.requirements.is_met(measured, only_known=True) is not False

    # -- twins: a network is trained once --------------------------------------------------------
    def _training_key(self, arch: Architecture) -> Optional[str]:
        """What training `arch` would be (TRAINING_KEY of its measurement or result), if known."""
        for known in (self.measurements.get(arch), self.records[arch].metrics if arch in self.records else None):
            key = (known or {}).get(TRAINING_KEY)
            if isinstance(key, str) and key:
                return key
        return None

    def _claim_training(self, arch: Architecture) -> None:
        """`arch` is proposed or trained: its training key is taken (the first claim stays)."""
        key = self._training_key(arch)
        if key is not None:
            self._claims.setdefault(key, arch)

    def _skip_twin(self, arch: Architecture) -> bool:
        """Whether `arch` trains as another network already proposed or trained; if so it is kept
        out of every later pool and counted once in `twins_skipped`."""
        key = self._training_key(arch)
        holder = self._claims.get(key) if key is not None else None
        if holder is None or holder == arch:
            return False
        if arch not in self._twins:
            self._twins.add(arch)
            self.twins_skipped += 1
            self._exclude(arch)
        return True

    # -- choosing -----------------------------------------------------------------------------
    def _choose(self) -> Architecture:
        if self.prototype is not None and not self.records and not self.pending:
            if self._screen(self.prototype):
                return self.prototype
        rows = self._pool_rows()
        if len(rows) == 0:
            return self._repropose()
        calls, allowance = 0, self._call_allowance()
        for _ in range(POOL_REDRAWS):
            order, p_feasible, acquisition = self._rank(rows)
            if self.profiler is None or not self.requirements:
                return self.space.architecture(rows[order[0]])
            chosen, tried, calls = self._measure_in_order(rows, order, acquisition, calls, allowance)
            if chosen is not None:
                return chosen
            untried = [j for j in range(len(rows)) if j not in tried]
            if untried:
                # Out of measurements without a feasible candidate: train the unmeasured one most
                # likely to meet 1_r (not the best-ranked: its expected improvement does not help
                # if it fails).
                rank = np.empty(len(order), dtype=int)
                rank[order] = np.arange(len(order))
                best = max(untried, key=lambda j: (p_feasible[j], -rank[j]))
                return self.space.architecture(rows[best])
            # Every candidate of the pool was measured and is a twin or infeasible, so none is in
            # the next pool: draw it, rather than train one of them.
            rows = self._pool_rows()
            if len(rows) == 0:
                return self._repropose()
        return self.space.architecture(rows[int(np.argmax(self._rank(rows)[1]))])

    def _measure_in_order(self, rows: np.ndarray, order: np.ndarray, acquisition: Optional[np.ndarray],
                          calls: int, allowance: int) -> tuple[Optional[Architecture], set[int], int]:
        """Walk the ranked pool, measuring unmeasured candidates while `allowance` lasts, and return
        the first one fit to train (pre-training feasible, not a twin), with the rows examined and
        the profiler calls spent so far; None if none qualified."""
        tried: set[int] = set()
        rescored: Optional[tuple[float, Architecture]] = None  # multi-objective: best measured so far
        for j in order:
            arch = self.space.architecture(rows[j])
            if rescored is not None and rescored[0] >= acquisition[j]:
                return rescored[1], tried, calls  # its measured value beats every prediction left
            if arch in self.measurements:
                if self._skip_twin(arch):
                    tried.add(int(j))
                    continue
                return arch, tried, calls  # measured earlier and feasible (infeasible ones never enter the pool)
            if calls >= allowance:
                break
            calls += 1
            tried.add(int(j))
            measured = self.measure(arch)
            if measured is None:
                return arch, tried, calls
            if not self._pre_training_feasible(measured) or self._skip_twin(arch):
                continue
            if acquisition is None:
                return arch, tried, calls
            # multi-objective: what it adds, now measured
            value = self._safely("re-scoring a measured candidate",
                                 lambda: float(self._acquisition(rows[j:j + 1], [measured])[0]), 0.0)
            if rescored is None or value > rescored[0]:
                rescored = (value, arch)
        return (rescored[1] if rescored is not None else None), tried, calls

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

    def _pool_rows(self, include_ready: bool = True) -> np.ndarray:
        """Distinct candidates never proposed and not measured infeasible, as value rows: samples
        of θ_G, neighbours of the best feasible networks (half the pool once there are some), and
        the networks the elite's probe responses suggest; with `include_ready`, also (up to the
        pool size) the untried ones screened ahead and measured to meet the requirements, whose
        figures are known."""
        budget = self.pool_size
        ready = self._ready_rows(budget) if include_ready else []
        parents = self._elite(FRONT_PARENTS if self.objectives is not None else 5)
        elite = [self.space.values_row(a) for a in parents]
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
                if key not in keys and self._open(key):
                    keys.add(key)
                    rows.append(row)
            if len(rows) >= budget // 4:
                break
        for row in self._suggested_rows():
            key = row.tobytes()
            if key not in keys and self._open(key):
                keys.add(key)
                rows.append(row)
        for row in ready:
            if row.tobytes() not in keys:
                rows.append(row)
        if not rows:  # θ_G has concentrated on tried points
            rows = self._sweep(budget, *self._closed())
        return self._as_matrix(rows)

    def _suggested_rows(self) -> list[np.ndarray]:
        """Value rows of the networks the elite's probe responses suggest (none in the ablation,
        `use_responses=False`): screened like any candidate, and when one is trained, the trust
        learns whether its source's advice held. Recomputed when the data or the trust changed."""
        if not (self.use_responses and self._probed):
            return []  # without responses there is nothing to suggest: no per-ask cost at scale
        version = (self._data_version, len(self.cycles))
        if self._suggestion_cache[0] != version:
            archs = self._safely("reading the probes' suggestions",
                                 lambda: self.inquisitor.probe_suggestions(self._teaching_records()), [])
            self._suggestion_cache = (version, [self.space.values_row(a) for a in archs])
        return self._suggestion_cache[1]

    def _as_matrix(self, rows: list[np.ndarray]) -> np.ndarray:
        return np.array(rows).reshape(len(rows), len(self.space.all_decisions))

    def _sweep(self, limit: int, *blocked: set[bytes]) -> list[np.ndarray]:
        """Up to `limit` value rows of a finite space (at most 200,000 points) in none of the
        `blocked` key sets, from a random place in its enumeration on: the rest of the space once
        θ_G samples only points already tried or measured. [] for an infinite or larger space."""
        if self._size is None or len(self._excluded) >= self._size:
            return []
        if self._finite_rows is None:
            every = self.space.enumerate(limit=200_000)
            if every is None:
                return []
            self._finite_rows = self._as_matrix([self.space.values_row(a) for a in every])
            self._finite_index = {row.tobytes(): i for i, row in enumerate(self._finite_rows)}
        start = int(self.rng.integers(len(self._finite_rows)))
        taken = np.zeros(len(self._finite_rows), dtype=bool)
        for keys in blocked:
            at = [self._finite_index[key] for key in keys if key in self._finite_index]
            taken[at] = True
        free = np.flatnonzero(~taken)
        free = np.concatenate([free[free >= start], free[free < start]])[:limit]
        return list(self._finite_rows[free])

    def _closed(self) -> tuple[set[bytes], ...]:
        """The value rows that may not join a pool: proposed or measured infeasible, and those
        out with a device being screened."""
        return self._excluded, self._screening

    def _open(self, key: bytes) -> bool:
        """Whether the value row `key` may join a pool (in none of `_closed`)."""
        return not any(key in closed for closed in self._closed())

    def _ready_rows(self, limit: int) -> list[np.ndarray]:
        """Up to `limit` untried value rows screened ahead and measured to meet the requirements,
        in a fixed order (a set's order would differ between processes), a random subset when
        there are more."""
        keys = sorted(key for key in self._screened_ok if key not in self._excluded)
        if len(keys) > limit:
            keys = [keys[i] for i in sorted(self.rng.choice(len(keys), size=limit, replace=False))]
        return [np.frombuffer(key, dtype=np.float64).copy() for key in keys]

    def _elite(self, k: int) -> list[Architecture]:
        return [r.arch for r in self._ranked_feasible(k)]

    def _best_by_score(self, k: int) -> list[Architecture]:
        scored = [r for r in self.records.values() if r.score is not None and r.feasible]
        return [r.arch for r in sorted(scored, key=lambda r: -r.score)[:k]]

    def _ranked_feasible(self, k: int) -> list[Record]:
        """The k best trained networks that meet 1_r, best first: by U; in multi-objective mode
        the front in an order spread along it (`spread_order`), then the dominated ones."""
        if self.objectives is not None:
            front = self._safely("ranking the front", self._front, None)
            if front is not None and front[0]:
                return [front[0][i] for i in spread_order(front[1], front[2], limit=k)]
        return [self.records[a] for a in self._best_by_score(k)]

    def _n_initial(self) -> int:
        return min(self.population_size, 10)

    def _rank(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Row indices ordered by the inquisitor's acquisition (random while data are scarce),
        each row's probability of meeting 1_r, and — in multi-objective mode, once it ranks by
        EHVI — each row's acquisition (else None)."""
        x = self.space.features(rows)
        self._condition()
        p_feasible = self.inquisitor.feasibility(x)
        if self.failed:
            p_feasible = p_feasible * self._away_from_failures(x)
        known: list[Optional[dict]] = [None] * len(rows)
        if self._measured_ok:
            for j, row in enumerate(rows):
                figures = self._measured_ok.get(row.tobytes())
                if figures is not None:
                    p_feasible[j] = 1.0
                    known[j] = figures
        trained = sum(1 for r in self.records.values() if r.score is not None)
        if trained < self._n_initial():
            acquisition = self.rng.random(len(rows)) * np.maximum(p_feasible, 1e-3)
            return np.argsort(-acquisition), p_feasible, None
        ehvi = self._safely("estimating EHVI", lambda: self._ehvi(x, known), None) if self.objectives else None
        gain = ehvi if ehvi is not None else self.inquisitor.expected_improvement(x)
        acquisition = gain * p_feasible + 1e-9 * self.rng.random(len(rows))  # random tie-break
        return np.argsort(-acquisition), p_feasible, (acquisition if ehvi is not None else None)

    # -- multi-objective mode (front.py) --------------------------------------------------------
    def _front(self) -> Optional[tuple[list[Record], np.ndarray, np.ndarray]]:
        """The feasible trained records, their oriented objective points and the oriented
        reference point; None before any trained result gives a reference. Computed once per
        data version (every proposal asks for it several times)."""
        assert self.objectives is not None
        if self._front_cache[0] != self._data_version:
            self._front_cache = (self._data_version, self._compute_front())
        return self._front_cache[1]

    def _compute_front(self) -> Optional[tuple[list[Record], np.ndarray, np.ndarray]]:
        kept, points = front_points(self.objectives, self.records.values())
        basis = points
        if not len(basis):  # nothing feasible yet: the reference from every trained result
            _, basis = front_points(self.objectives, self.records.values(), feasible_only=False)
        if len(basis):
            basis = basis[non_dominated(basis)]
        reference = self.objectives.reference_point(self.requirements, basis)
        if not np.all(np.isfinite(reference)):
            return None
        return kept, points, reference

    def _ehvi(self, x: np.ndarray, known: Optional[list] = None) -> Optional[np.ndarray]:
        """Expected hypervolume improvement of each row over the feasible front; None while an
        objective's surrogate or the reference point is missing."""
        front = self._front()
        if front is None:
            return None
        if self._draws is None:
            self._draws = sobol_normal(EHVI_SAMPLES, len(self.objectives.objectives),
                                       np.random.default_rng(self.seed))
        draws = self.inquisitor.objective_draws(x, self._draws, known)
        return None if draws is None else expected_hv_improvement(draws, front[1], front[2])

    def _acquisition(self, rows: np.ndarray, known: list) -> np.ndarray:
        """EHVI times P(1_r) of rows whose measured figures are `known` (multi-objective mode)."""
        x = self.space.features(rows)
        ehvi = self._ehvi(x, known)
        return (ehvi if ehvi is not None else np.zeros(len(rows))) * self.inquisitor.feasibility(x, known=known)

    def _fitness(self) -> dict[Architecture, float]:
        """Multi-objective mode: each feasible trained network's `pareto_fitness`."""
        front = self._front()
        if front is None or not front[0]:
            return {}
        kept, points, reference = front
        return {r.arch: float(f) for r, f in zip(kept, pareto_fitness(points, reference))}

    def hypervolume(self) -> Optional[float]:
        """Multi-objective mode: the hypervolume of the feasible front (oriented objectives,
        against the current reference point); None in single-objective mode or before a reference."""
        front = self._front() if self.objectives is not None else None
        return None if front is None else hypervolume(front[1], front[2])

    def _away_from_failures(self, x: np.ndarray) -> np.ndarray:
        """Per candidate, 0 within NEAR_FAILURE of a failed network (distance in decisions: 1 per
        differing choice, the squared unit difference per continuous one), rising to 1 at twice
        that: a network that failed (a trial that crashed, a sample the model space's constraints
        reject) rules out its near copies (the same choices, close continuous values). No
        surrogate models failure; without this, a space with a continuous decision offers endless
        near copies of a failed network, and a converged search keeps proposing them."""
        rows = [self.space.values_row(a) for a in self.failed]
        if len(rows) > MAX_FAILURES_AVOIDED:  # the same subset in every process (a set has no order)
            rows = sorted(rows, key=lambda row: row.tobytes())[:MAX_FAILURES_AVOIDED]
        rows = np.stack(rows)
        weights = np.ones(x.shape[1])  # distance in decisions: 1 per differing choice
        distance = weighted_distance(x, self.space.features(rows), categorical_mask(self.space), weights)
        return np.clip(distance.min(axis=1) / NEAR_FAILURE - 1.0, 0.0, 1.0)

    def _best_feasible_score(self) -> Optional[float]:
        scores = [r.score for r in self.records.values() if r.score is not None and r.feasible]
        return max(scores) if scores else None

    def _condition(self) -> None:
        """Condition θ_I on everything known, without refitting hyperparameters. A failure is
        logged and θ_I stays conditioned on the data it had (tried again when data arrive)."""
        if self._conditioned_on != self._data_version:
            self._conditioned_on = self._data_version
            self._safely("conditioning θ_I on new data",
                         lambda: self.inquisitor.refit(self._all_records(), optimize=False), None)

    def _safely(self, what: str, step: Callable[[], T], fallback: T) -> T:
        """`step()`, or `fallback` when it raises: learning and choosing must never stop the search.

        The guard between the surrogates and `ask`/`tell`. MemoryError is caught too: here it
        comes from one oversized matrix, and the engine goes on without it."""
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            _logger.warning("GenSynth: %s failed (%s: %s); carrying on without it", what, type(exc).__name__,
                            short_repr(str(exc)))
            _logger.debug("GenSynth: %s failed", what, exc_info=True)
            return fallback

    def _fallback_proposal(self) -> Architecture:
        """A sample of θ_G; should sampling fail too, the first option and the middle value of
        every decision."""
        sample = self._safely("sampling θ_G", lambda: self.generator.sample(self.rng), None)
        if sample is not None:
            return sample
        values: dict = {}
        for d in self.space.active(values):
            values[d.key] = 0 if isinstance(d, ChoiceDecision) else d.from_unit(0.5 if d.bounded else 0.0)
        return self.space.make(list(values.items()))

    def _all_records(self) -> list[Record]:
        """Trained records plus measured-only ones (they inform the requirement surrogates);
        kept up to date as results and measurements arrive, so this costs no scan."""
        return list(self.records.values()) + list(self._measured_only.values())

    def forget_measurements(self) -> None:
        """Drop every stored measurement (to judge 1_r on fresh ones, e.g. on another device)."""
        self.measurements = {}
        self._measured_only = {}
        self._measured_ok = {}
        self._screened_ok = set()
        self._data_version += 1

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
        delta_norm = self._learn()
        window = list(self.records.values())[-self._results_in_cycle:]
        stats = CycleStats(
            cycle=len(self.cycles) + 1,
            results=len(self.records),
            best_u=self.best_u(),
            feasible_fraction=(sum(1 for r in window if r.feasible) / len(window)) if window else 0.0,
            entropy=self.generator.entropy(),
            delta_norm=delta_norm,
            profiler_calls=self.profiler_calls,
            seconds=time.monotonic() - self._cycle_started,
            trust=self.inquisitor.trust.summary(),
            hypervolume=self._safely("computing the hypervolume", self.hypervolume, None),
        )
        self.cycles.append(stats)
        self._results_in_cycle = 0
        self._cycle_started = time.monotonic()
        _logger.info("cycle %d: %d results, best %s %s, feasible %.0f%%, generator entropy %.3f, |Δθ_G| %.3f, "
                     "%d profiler calls, probe trust %s", stats.cycle, stats.results,
                     "hypervolume" if self.objectives is not None else "U",
                     _shown(stats.hypervolume if self.objectives is not None else stats.best_u),
                     100 * stats.feasible_fraction,
                     stats.entropy, stats.delta_norm, stats.profiler_calls, stats.trust or "n/a")
        if self.on_cycle is not None:
            self._safely("the on_cycle callback", lambda: self.on_cycle(stats), None)

    def _learn(self) -> float:
        """One cycle's learning; returns |Δθ_G|. θ_I is refitted on everything known, then Δθ_G —
        toward the elite and the unseen networks θ_I ranks best — is applied to θ_G. A step that
        fails is logged and skipped, leaving what it would have changed as it was: when the
        refit fails the previous θ_I is kept, and Δθ_G is still learned from the results."""
        if self._safely("refitting θ_I", self._refit, False):
            self._conditioned_on = self._data_version
        predicted = self._safely("ranking unseen networks by θ_I", self._predicted_elite, [])
        delta = self._safely("computing Δθ_G", lambda: self.inquisitor.generator_delta(
            self.generator, self._teaching_records(), predicted, use_responses=self.use_responses), None)
        if delta is None or not self._safely("applying Δθ_G", lambda: self.generator.apply(delta) or True, False):
            return 0.0
        return delta.norm()

    def _teaching_records(self) -> list[Record]:
        """The records Δθ_G learns from; in multi-objective mode a feasible one's score is its
        `pareto_fitness`, so the generator is taught toward the front, not one objective."""
        records = list(self.records.values())
        fitness = self._safely("ranking the front", self._fitness, {}) if self.objectives is not None else {}
        return [dataclasses.replace(r, score=fitness[r.arch]) if r.arch in fitness else r for r in records]

    def _refit(self) -> bool:
        """Refit θ_I's hyperparameters and condition it on everything known (True when done)."""
        self.inquisitor.refit(self._all_records(), optimize=True, rng=self.rng)
        return True

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
        mean = self._predicted_gain(x)
        likely = self.inquisitor.feasibility(x) >= 0.5
        return np.lexsort((-mean, ~likely)), likely

    def _predicted_gain(self, x: np.ndarray, known: Optional[list] = None) -> np.ndarray:
        """Per row, larger is better: the predicted U; in multi-objective mode the EHVI."""
        if self.objectives is not None:
            ehvi = self._safely("estimating EHVI", lambda: self._ehvi(x, known), None)
            if ehvi is not None:
                return ehvi
        if not self.inquisitor.u_model.fitted:
            return np.zeros(len(x))
        return self.inquisitor.predict_score(x)[0]

    # -- results ------------------------------------------------------------------------------
    def best_u(self) -> Optional[float]:
        """Best U (in the user's orientation) among networks that meet 1_r."""
        best = self._best_feasible_score()
        if best is None:
            return None
        return best if self.objective.mode == "maximize" else -best

    def best(self, k: int = 5) -> list[Record]:
        """The k best trained networks that meet 1_r, best first; in multi-objective mode the
        front first, in an order spread along it (any prefix covers the front's range)."""
        return self._ranked_feasible(k)

    @_single_threaded
    def generate(self, n: int, max_profiler_calls: Optional[int] = None) -> list[Architecture]:
        """n distinct networks from the taught generator (distinct trainings too: of candidates
        the profiler names as training alike, the first is kept), those most likely to meet every
        requirement first, each meeting 1_r by measurement.

        Candidates: the trained networks that met 1_r (best U first: known to meet it), then
        untrained ones — neighbours of those networks (one or two decisions changed) and fresh
        samples of θ_G — ranked by the inquisitor's probability of meeting every requirement,
        accuracy included (surrogates of the trained results; measured figures used where
        known), then by predicted U. Each is measured (when a profiler is set) before it is
        accepted. Returns fewer than n only when the call budget (default 20·n) runs out.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        budget = 20 * n if max_profiler_calls is None else max_profiler_calls
        chosen: list[Architecture] = []
        trainings: set[str] = set()
        candidates = [r.arch for r in self.best(n)] + self._generation_candidates(40 * n)
        calls = 0
        for arch in dict.fromkeys(candidates):
            if len(chosen) >= n:
                break
            if self.profiler is not None and self.requirements and arch not in self.measurements:
                if calls >= budget:
                    break
                calls += 1
            if not self._meets_requirements_now(arch):
                continue
            key = self._training_key(arch)
            if key in trainings:
                continue
            chosen.append(arch)
            if key is not None:
                trainings.add(key)
        return chosen

    def _generation_candidates(self, k: int) -> list[Architecture]:
        """Up to k untrained networks, ordered by P(every requirement met) in steps of 0.05, then
        by predicted U: neighbours of the best feasible networks and samples of θ_G."""
        rows = [self._unique_samples(max(k, 200), exclude_seen=False)]
        elite = [self.space.values_row(a) for a in self._elite(5)]
        if elite:
            parents = np.stack(elite)[self.rng.integers(len(elite), size=4 * k)]
            rows.append(self.generator.mutate_rows(parents, self.rng, 1 + (self.rng.random(4 * k) < 0.3)))
        pool = np.vstack(rows)
        keys: set[bytes] = set()
        keep = []
        for j, row in enumerate(pool):
            key = row.tobytes()
            if key not in keys and self.space.architecture(row) not in self.records:
                keys.add(key)
                keep.append(j)
        pool = pool[keep]
        if len(pool) == 0:
            return []
        self._condition()
        x = self.space.features(pool)
        known = [self.measurements.get(self.space.architecture(row)) for row in pool]
        p_all = self.inquisitor.feasibility(x, known=known)
        mean = self._predicted_gain(x, known)
        order = np.lexsort((-mean, -np.round(p_all / 0.05)))
        return [self.space.architecture(pool[j]) for j in order[:k]]

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
        """Everything learned, as JSON data (no pickles; no NaN or inf, so `json.dumps(...,
        allow_nan=False)` accepts it): θ_G, θ_I, results, measurements, pending proposals."""
        return json_safe({
            "version": STATE_VERSION,
            "generator": self.generator.state_dict(),
            "u_model": self.inquisitor.u_model.hyperparameters(),
            "metric_models": {m: g.hyperparameters() for m, g in self.inquisitor.metric_models.items()},
            "objective_models": {m: g.hyperparameters() for m, g in self.inquisitor.objective_models.items()},
            "records": [{"parameters": self.space.to_parameters(r.arch), "metrics": r.metrics,
                         "responses": r.responses, "trained": r.score is not None}
                        for r in self.records.values()],
            "measurements": [{"parameters": self.space.to_parameters(a), "metrics": m}
                             for a, m in self.measurements.items()],
            "pending": [self.space.to_parameters(a) for a in sorted(self.pending, key=Architecture.encode)],
            "cycles": [c.as_dict() for c in self.cycles],
            "trust": self.inquisitor.trust.state_dict(),
            "profiler_calls": self.profiler_calls,
            "asks": self._asks,
            "results_in_cycle": self._results_in_cycle,
            "twins_skipped": self.twins_skipped,
            "rng": self.rng.bit_generator.state,
        })

    def load_state_dict(self, state: Any) -> None:
        """Continue from `state_dict()` output (same search space): learning resumes, not restarts.

        Tolerant of damage: each part — θ_G, the surrogates' hyperparameters, every record,
        measurement and pending proposal, the cycles, the counters, the RNG — is validated on
        its own; what is valid is loaded, what is not is skipped with a warning (a record
        outside the search space, metrics of garbage, a truncated list...). Raises StateError,
        with the engine unchanged, only when nothing usable is there: not a dict, another
        version, or neither θ_G nor any record, measurement or pending proposal fits."""
        if not isinstance(state, Mapping):
            raise StateError(f"GenSynth state must be a JSON object, got {type(state).__name__}")
        if state.get("version") != STATE_VERSION:
            raise StateError(f"unsupported GenSynth state version {short_repr(state.get('version'))}")
        measurements = self._saved_entries(state, "measurements", self._saved_measurement)
        pending = self._saved_entries(state, "pending", self.space.from_parameters)
        records = self._saved_entries(state, "records", self._saved_record)
        generator = self._safely("restoring θ_G", lambda: self.generator.load_state_dict(state.get("generator")) or True,
                                 False)
        if not (generator or measurements or pending or records):
            raise StateError("GenSynth state holds nothing usable for this search space")
        self._load_hyperparameters(state)
        self.measurements, self._measured_only = {}, {}
        for arch, measured in measurements:
            self._remember_measurement(arch, measured)
        for arch in pending:  # proposed before the stop, result unknown: never proposed again (a
            self.pending.add(arch)  # late result, or NNI's replay of finished trials, still comes through `tell`)
            self._exclude(arch)
        self.records, self.failed, self._claims, self._twins = {}, set(), {}, set()
        self._data_version += 1  # what was known before is gone, even when no record is saved
        for arch, reported, trained in records:
            self._record(arch, reported, scored=trained)
        for arch in sorted(self.pending, key=Architecture.encode):  # their twins stay untrained after a restart
            self._claim_training(arch)
        self.cycles = self._saved_entries(state, "cycles", CycleStats.from_dict)
        self._safely("restoring the probe trust", lambda: self.inquisitor.trust.load_state_dict(state.get("trust") or {}),
                     None)
        self.profiler_calls = _saved_count(state, "profiler_calls")
        self._asks = _saved_count(state, "asks")
        self._results_in_cycle = min(_saved_count(state, "results_in_cycle"), self.population_size - 1)
        self.twins_skipped = _saved_count(state, "twins_skipped")
        self._load_rng(state.get("rng"))

    def _saved_entries(self, state: Mapping[str, Any], key: str, parse: Callable[[Any], Any]) -> list:
        """`parse` of each entry of the list `state[key]`, skipping (with one warning) those it rejects."""
        saved = state.get(key, [])
        if not isinstance(saved, list):
            _logger.warning("GenSynth state: %r is not a list; skipped", key)
            return []
        parsed, skipped = [], 0
        for entry in saved:
            try:
                parsed.append(parse(entry))
            except Exception:  # noqa: BLE001 - one damaged entry must not lose the others
                skipped += 1
        if skipped:
            _logger.warning("GenSynth state: %d of %d %s skipped (damaged, or outside this search space)",
                            skipped, len(saved), key)
        return parsed

    def _saved_measurement(self, entry: Any) -> tuple[Architecture, dict]:
        """(architecture, clean metrics) of a saved measurement; an exception when unusable."""
        arch = self.space.from_parameters(entry["parameters"])
        if not isinstance(entry["metrics"], Mapping):
            raise ValueError("measurement metrics must be an object")
        measured = clean_metrics(entry["metrics"], keep=self.requirements.metrics)
        measured.pop(RESPONSES_KEY, None)
        return arch, measured

    def _saved_record(self, entry: Any) -> tuple[Architecture, dict, bool]:
        """(architecture, clean metrics with responses, trained) of a saved record; an exception
        when unusable. A record's metrics merge a result and a measurement: twice the key limit."""
        arch = self.space.from_parameters(entry["parameters"])
        metrics = entry.get("metrics")
        reported = clean_metrics(metrics, self._metric_keys, 2 * MAX_METRICS) if isinstance(metrics, Mapping) else {}
        responses = parse_responses(entry.get("responses"))
        if responses is not None:
            reported[RESPONSES_KEY] = responses
        return arch, reported, entry.get("trained") is True

    def _load_hyperparameters(self, state: Mapping[str, Any]) -> None:
        """θ_I's saved hyperparameters, each surrogate's on its own (a bad one keeps the defaults)."""
        models = [("U", self.inquisitor.u_model, state.get("u_model"))]
        for key, surrogates in (("metric_models", self.inquisitor.metric_models),
                                ("objective_models", self.inquisitor.objective_models)):
            saved = state.get(key)
            saved = saved if isinstance(saved, Mapping) else {}
            models += [(m, g, saved.get(m)) for m, g in surrogates.items()]
        for name, model, saved in models:
            if saved is not None:
                self._safely(f"restoring the {name} surrogate's hyperparameters",
                             lambda: model.set_hyperparameters(saved), None)

    def _load_rng(self, saved: Any) -> None:
        """The saved RNG state; an unusable one leaves the seeded RNG as it is."""
        before = self.rng.bit_generator.state
        try:
            self.rng.bit_generator.state = saved
        except Exception as exc:  # noqa: BLE001 - numpy raises TypeError, ValueError or KeyError
            self.rng.bit_generator.state = before
            _logger.warning("GenSynth state: RNG state unusable (%s); continuing from the seed", short_repr(str(exc)))


def _shown(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _saved_count(state: Mapping[str, Any], key: str) -> int:
    """A non-negative integer from a saved state (0, with a warning, when damaged)."""
    value = state.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _logger.warning("GenSynth state: %r is %s, not a count; 0 used", key, short_repr(value))
        return 0
    return value
