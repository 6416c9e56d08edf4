"""Multi-objective mode: two or three objectives, and the front of networks that trade them off.

    objectives: [{accuracy: max}, {latency_ms: min}]        (classArgs)

Instead of one U, the search maximises the hypervolume of the feasible front: the region of
objective space that the networks meeting 1_r dominate, above a reference point. Candidates are
ranked by expected hypervolume improvement (EHVI; Emmerich et al. 2006) times the probability of
meeting 1_r. EHVI is estimated from the inquisitor's surrogate of each objective with a few dozen
scrambled-Sobol posterior draws shared by all candidates (quasi-Monte Carlo, as BoTorch's qEHVI
does, Daulton et al. 2020); a figure already measured (latency before training) enters as it is,
not as a draw. The generator is taught toward the front: networks are ranked by non-dominated
layer, then by what each adds to its layer's hypervolume.

The reference point, per objective: the user's (`reference` in classArgs), else the requirement's
bound on that metric (latency_ms <= 25 gives 25), else the worst value on the current feasible
front less a tenth of the front's range (the nadir rule of BoTorch's `infer_reference_point`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from .hypervolume import MAX_OBJECTIVES, contributions, hv_improvement, hypervolume, non_dominated
from .metrics import finite_float, short_repr
from .objective import MAXIMIZE, MINIMIZE, Objective, Requirements

SENSES = {"max": MAXIMIZE, "maximize": MAXIMIZE, "min": MINIMIZE, "minimize": MINIMIZE}
EHVI_SAMPLES = 32  # posterior draws per candidate (scrambled Sobol): the estimate's error is ~1/32
NADIR_MARGIN = 0.1  # reference = nadir of the front less this share of its range


class ObjectivesError(ValueError):
    """`objectives` or `reference` is malformed; the message names the argument."""


@dataclass(frozen=True)
class Objectives:
    """Two or three objectives, each a metric and a direction, and optional reference values."""

    objectives: tuple[Objective, ...]
    reference: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 2 <= len(self.objectives) <= MAX_OBJECTIVES:
            raise ObjectivesError(f"objectives: give 2 or 3 objectives, got {len(self.objectives)}")
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ObjectivesError(f"objectives: each metric at most once, got {names}")
        unknown = sorted(set(dict(self.reference)) - set(names))
        if unknown:
            raise ObjectivesError(f"reference: {unknown[0]!r} is not one of the objectives {names}")

    # -- the engine's scorer interface (as Objective) -----------------------------------------
    @property
    def metric(self) -> str:
        return ",".join(self.metrics)

    @property
    def mode(self) -> str:
        return self.objectives[0].mode  # `score` is the first objective's

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self.objectives)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for o in self.objectives for k in o.inputs))

    def score(self, metrics: Mapping[str, Any]) -> Optional[float]:
        """The first objective, oriented, when every objective can be read from `metrics`; None
        (a failed result) when one cannot."""
        point = self.point(metrics)
        return None if point is None else float(point[0])

    # -- the front ------------------------------------------------------------------------------
    def point(self, metrics: Mapping[str, Any]) -> Optional[np.ndarray]:
        """The objectives of one result, oriented so larger is better; None when one is missing."""
        values = [o.score(metrics) for o in self.objectives]
        return None if any(v is None for v in values) else np.array(values, dtype=float)

    def reference_point(self, requirements: Requirements, front: np.ndarray) -> np.ndarray:
        """The oriented reference point (see the module doc)."""
        given = dict(self.reference)
        bounds = {b.metric: b for b in requirements.bounds}
        ref = np.empty(len(self.objectives))
        for i, o in enumerate(self.objectives):
            bound = bounds.get(o.metric)
            worst_allowed = None if bound is None else (bound.min if o.mode == MAXIMIZE else bound.max)
            if o.metric in given:
                ref[i] = self.orient_one(i, given[o.metric])
            elif worst_allowed is not None:
                ref[i] = self.orient_one(i, worst_allowed)
            elif len(front):
                low, high = float(front[:, i].min()), float(front[:, i].max())
                ref[i] = low - NADIR_MARGIN * ((high - low) or abs(low) or 1.0)
            else:
                ref[i] = -math.inf
        return ref

    def orient_one(self, i: int, value: float) -> float:
        return float(value) if self.objectives[i].mode == MAXIMIZE else -float(value)

    def describe(self) -> list[dict[str, str]]:
        """As classArgs spell it: [{"accuracy": "max"}, {"latency_ms": "min"}]."""
        return [{o.metric: "max" if o.mode == MAXIMIZE else "min"} for o in self.objectives]


def parse_objectives(value: Any, reference: Any = None) -> Objectives:
    """`objectives` as classArgs give it — a list of one-entry mappings ([{accuracy: max},
    {latency_ms: min}]) or one mapping in order ({accuracy: max, latency_ms: min}) — and an
    optional `reference` mapping (metric -> value in the metric's own units)."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = []
        for entry in value:
            if not isinstance(entry, Mapping) or len(entry) != 1:
                raise ObjectivesError(f"objectives: each entry must be one {{metric: max|min}}, got {entry!r}")
            pairs.extend(entry.items())
    else:
        raise ObjectivesError(f"objectives: expected a list like [{{accuracy: max}}, {{latency_ms: min}}], "
                              f"got {type(value).__name__}")
    objectives = []
    for metric, sense in pairs:
        if not isinstance(metric, str) or not metric:
            raise ObjectivesError(f"objectives: metric names must be non-empty texts, got {metric!r}")
        if not isinstance(sense, str) or sense.lower() not in SENSES:
            raise ObjectivesError(f"objectives: {metric!r} must be 'max' or 'min', got {sense!r}")
        objectives.append(Objective(metric, SENSES[sense.lower()]))
    references: list[tuple[str, float]] = []
    if reference is not None:
        if not isinstance(reference, Mapping):
            raise ObjectivesError(f"reference: expected a mapping of metric to value, got {type(reference).__name__}")
        for metric, number in reference.items():
            value = finite_float(number)  # None for a bool, NaN, inf, 10**400, a text...
            if value is None:
                raise ObjectivesError(f"reference: {metric!r} must be a finite number, got {short_repr(number)}")
            references.append((str(metric), value))
    return Objectives(tuple(objectives), tuple(references))


def front_points(objectives: Objectives, records: Sequence[Any],
                 feasible_only: bool = True) -> tuple[list[Any], np.ndarray]:
    """The trained records (those that meet 1_r, unless `feasible_only` is False) and their
    oriented objective points."""
    kept, points = [], []
    for r in records:
        if r.score is None or (feasible_only and not r.feasible):
            continue
        point = objectives.point(r.metrics or {})
        if point is not None:
            kept.append(r)
            points.append(point)
    return kept, np.array(points).reshape(len(points), len(objectives.objectives))


def pareto_fitness(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Larger is better: minus the non-dominated layer (0 for the front), plus within a layer up
    to 0.99 for the largest share of the layer's hypervolume the point alone adds."""
    n = len(points)
    fitness = np.zeros(n)
    left = np.arange(n)
    layer = 0
    while len(left):
        on = non_dominated(points[left])
        members = left[on]
        ref = np.minimum(reference, points[members].min(axis=0) - 1e-9)  # every member counts
        share = contributions(points[members], ref)
        top = share.max()
        fitness[members] = -layer + (0.99 * share / top if top > 0 else 0.0)
        left = left[~on]
        layer += 1
    return fitness


def spread_order(points: np.ndarray, reference: np.ndarray, limit: Optional[int] = None) -> list[int]:
    """The first `limit` (default all) indices of `points`, each next one the point that adds the
    most hypervolume to those before it (greedy hypervolume subset selection: a prefix of any
    length is spread along the front), then the points that add nothing, by `pareto_fitness`."""
    n = len(points)
    limit = n if limit is None else min(limit, n)
    ref = np.minimum(reference, points.min(axis=0) - 1e-9) if n else reference
    chosen: list[int] = []
    left = list(range(n))
    while left and len(chosen) < limit:
        gains = hv_improvement(points[chosen], points[left], ref)
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(left.pop(best))
    if len(chosen) >= limit:
        return chosen
    fitness = pareto_fitness(points, reference)
    return (chosen + sorted(left, key=lambda i: -fitness[i]))[:limit]


def sobol_normal(samples: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """`samples` x `dims` standard-normal quasi-random draws (scrambled Sobol, seeded by `rng`)."""
    sampler = qmc.Sobol(dims, scramble=True, seed=rng)
    return ndtri(np.clip(sampler.random(samples), 1e-9, 1 - 1e-9))


def expected_hv_improvement(draws: np.ndarray, front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """EHVI per candidate from `draws` (candidates x samples x objectives, oriented)."""
    m, s, d = draws.shape
    flat = hv_improvement(front, draws.reshape(m * s, d), reference)
    return flat.reshape(m, s).mean(axis=1)


__all__ = ["Objectives", "ObjectivesError", "parse_objectives", "front_points", "pareto_fitness", "spread_order",
           "expected_hv_improvement", "sobol_normal", "hypervolume"]
