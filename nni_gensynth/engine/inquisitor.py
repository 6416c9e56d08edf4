"""The inquisitor I(G; θ_I): learns from every probe and turns it into Δθ_G.

θ_I is what the inquisitor has learned: a surrogate of U and one surrogate per requirement
metric (on log scale for positive hardware metrics), each with uncertainty, fitted on every
trained result and every hardware measurement; plus the response statistics of probes.
It serves the engine in two ways:

- screening: ranks candidate networks by expected improvement of U times the probability
  that they meet 1_r, so only promising, likely-feasible candidates are measured and
  trained (measure before train);
- teaching: at the end of each cycle, `generator_delta` moves θ_G toward the networks that
  maximise U while meeting 1_r — the best trained ones and the best ones the surrogates
  predict — which is Δθ_G.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from .generator import Generator, GeneratorDelta
from .front import Objectives
from .metrics import finite_float
from .objective import ACCURACY, MAXIMIZE, NETSCORE_COST, Objective, Requirements
from .space import Architecture, ChoiceDecision, SearchSpace, SearchSpaceError, key_name
from .surrogate import GaussianProcess
from .trust import ProbeTrust


SHRINK_RUNGS = 4  # suggestions per probed network that missed the requirements: the target, then 1-3 options past it


def categorical_mask(space: SearchSpace) -> np.ndarray:
    return np.array([isinstance(d, ChoiceDecision) for d in space.all_decisions])


@dataclass
class Record:
    """What the inquisitor knows about one architecture."""

    arch: Architecture
    score: Optional[float] = None  # U oriented so larger is better; None if not trained or failed
    metrics: Optional[dict] = None  # everything known: trained result and measurements
    feasible: Optional[bool] = None  # 1_r, None while unknown
    responses: Optional[dict] = None  # probe responses: {decision name: {"target": v, "weight": w}}


class Inquisitor:
    """θ_I: surrogates of U and of each requirement metric, refitted once per cycle."""

    def __init__(self, space: SearchSpace, requirements: Requirements,
                 objectives: Optional[Objectives] = None) -> None:
        self.space = space
        self.requirements = requirements
        self.objectives = objectives
        mask = categorical_mask(space)
        self.u_model = GaussianProcess(mask)
        self.metric_models = {m: GaussianProcess(mask) for m in requirements.metrics}
        # multi-objective mode: a surrogate per objective that is not already a requirement metric
        self.objective_models = {o.metric: GaussianProcess(mask) for o in (objectives.objectives if objectives else ())
                                 if not _shares_requirement_model(o, self.metric_models)}
        self._log_scale: dict[str, bool] = {}
        self.best_z: Optional[float] = None  # best feasible U on the copula scale
        # how far each kind of probe response has proved right, judged against the accuracy the user needs
        self.trust = ProbeTrust(space, accuracy_bar=requirements.minimum(ACCURACY))
        self.max_u_points = MAX_U_POINTS
        self._feature_cache: dict[Architecture, np.ndarray] = {}

    def features(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Surrogate features of architectures (rows cached: they never change)."""
        rows = []
        for arch in archs:
            row = self._feature_cache.get(arch)
            if row is None:
                row = self._feature_cache[arch] = self.space.features(self.space.values_row(arch))[0]
            rows.append(row)
        return np.array(rows).reshape(len(rows), len(self.space.all_decisions))

    # -- learning -------------------------------------------------------------------------
    def refit(self, records: Sequence[Record], optimize: bool, rng: Optional[np.random.Generator] = None,
              max_metric_points: int = 300) -> None:
        """Condition every surrogate on the records (hyperparameters refitted if `optimize`).

        A requirement surrogate keeps the newest `max_metric_points` measurements: hardware
        metrics are smooth in the architecture, and the posterior cost grows with n³. When any
        surrogate fails (a singular kernel, MemoryError), the error propagates with θ_I exactly
        as it was before the call, never half refitted."""
        saved = self._snapshot()
        try:
            self._refit(records, optimize, rng, max_metric_points)
        except BaseException:
            self._restore(saved)
            raise

    def _snapshot(self) -> dict:
        """θ_I as it stands: every surrogate's attributes (an update replaces them, never changes
        them in place, so a shallow copy is a snapshot), the best feasible U and the metric scales."""
        models = [self.u_model, *self.metric_models.values(), *self.objective_models.values()]
        return {"models": [(m, dict(m.__dict__)) for m in models], "best_z": self.best_z,
                "log_scale": dict(self._log_scale)}

    def _restore(self, saved: dict) -> None:
        for model, attributes in saved["models"]:
            model.__dict__.clear()
            model.__dict__.update(attributes)
        self.best_z, self._log_scale = saved["best_z"], saved["log_scale"]

    def _refit(self, records: Sequence[Record], optimize: bool, rng: Optional[np.random.Generator],
               max_metric_points: int) -> None:
        # Everything here is derived from `records` alone (a surrogate with no data left forgets
        # its posterior, a metric's scale follows its values), so a resumed engine that is given
        # the same records ranks exactly as the one that saved them.
        trained = [r for r in records if r.score is not None]
        self.best_z = None
        if trained:
            z = copula(np.array([r.score for r in trained]))
            keep = active_set(z, [bool(r.feasible) for r in trained], self.max_u_points)
            self.u_model.fit(self.features([trained[i].arch for i in keep]), z[keep], optimize=optimize, rng=rng)
            feasible_z = [zi for zi, r in zip(z, trained) if r.feasible]
            self.best_z = max(feasible_z) if feasible_z else None
        else:
            self.u_model.forget()  # every result was replaced by a failure
        objectives = {o.metric: o for o in (self.objectives.objectives if self.objectives else ())}
        for metric, model in [*self.metric_models.items(), *self.objective_models.items()]:
            value_of = objectives[metric].value if metric in self.objective_models else _reader(metric)
            known = _newest_known(records, value_of, max_metric_points)
            if not known:
                model.forget()
                continue
            values = np.array([float(v) for _, v in known])
            self._log_scale[metric] = bool(np.all(values > 0))  # log scale for positive metrics only
            if self._log_scale[metric]:
                values = np.log(values)
            model.fit(self.features([a for a, _ in known]), values, optimize=optimize, rng=rng)

    # -- screening ------------------------------------------------------------------------
    def feasibility(self, x: np.ndarray, known: Optional[Sequence[Optional[Mapping]]] = None) -> np.ndarray:
        """P(1_r = 1) for each row, from the requirement surrogates (1 where none is fitted).

        `known[j]`, when given, holds figures already measured for row j: a requirement on a
        known figure counts as met (1) or broken (0) instead of predicted."""
        p = np.ones(len(x))
        for bound in self.requirements.bounds:
            model = self.metric_models[bound.metric]
            if model.fitted:
                mean, std = model.predict(x)
                log = self._log_scale.get(bound.metric, False)
                if bound.max is not None:
                    limit = math.log(bound.max) if log and bound.max > 0 else bound.max
                    p_bound = ndtr((limit - mean) / std) if not (log and bound.max <= 0) else np.zeros(len(x))
                else:
                    p_bound = np.ones(len(x))
                if bound.min is not None and not (log and bound.min <= 0):
                    limit = math.log(bound.min) if log else bound.min
                    p_bound = p_bound * ndtr((mean - limit) / std)
            else:
                p_bound = np.ones(len(x))
            if known is not None:
                for j, facts in enumerate(known):
                    value = facts.get(bound.metric) if isinstance(facts, Mapping) else None
                    if _is_number(value):
                        p_bound[j] = float(bound.violation(float(value)) == 0.0)
            p *= p_bound
        return p

    def expected_improvement(self, x: np.ndarray) -> np.ndarray:
        """EI over the best feasible U so far, on the copula scale of U (larger is better);
        mean plus std while nothing is feasible."""
        mean, std = self.u_model.predict(x)
        best = self.best_z
        if best is None or not self.u_model.fitted:
            return mean - mean.min() + std
        z = (mean - best) / std
        return (mean - best) * ndtr(z) + std * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def objective_draws(self, x: np.ndarray, z: np.ndarray,
                        known: Optional[Sequence[Optional[Mapping]]] = None) -> Optional[np.ndarray]:
        """Posterior draws of the objectives (multi-objective mode), oriented so larger is better:
        rows x draws x objectives from the standard-normal draws `z` (draws x objectives), a
        figure in `known[j]` (measured before training) standing for itself in every draw. None
        when an objective's surrogate has no data yet."""
        assert self.objectives is not None
        out = np.empty((len(x), len(z), len(self.objectives.objectives)))
        for i, objective in enumerate(self.objectives.objectives):
            model = self.objective_models.get(objective.metric) or self.metric_models[objective.metric]
            if not model.fitted:
                return None
            mean, std = model.predict(x)
            values = mean[:, None] + std[:, None] * z[None, :, i]
            if self._log_scale.get(objective.metric, False):
                values = np.exp(np.minimum(values, 700.0))
            out[:, :, i] = values if objective.mode == MAXIMIZE else -values
            if known is not None:
                for j, facts in enumerate(known):
                    value = objective.score(facts) if isinstance(facts, Mapping) else None
                    if value is not None:
                        out[j, :, i] = value
        return out

    def predict_score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate mean and std of U on its copula scale (monotone in U)."""
        return self.u_model.predict(x)

    # -- teaching -------------------------------------------------------------------------
    def generator_delta(self, generator: Generator, records: Sequence[Record],
                        predicted: Sequence[Architecture] = (), learning_rate: float = 0.5,
                        elite_fraction: float = 0.25, max_elite: int = 12,
                        use_responses: bool = True) -> GeneratorDelta:
        """Δθ_G: moves θ_G toward the elite — the best feasible trained networks (or the least
        infeasible when none is feasible yet), joined at half weight by the networks the
        surrogates rank best among `predicted`."""
        ranked = self._ranked_for_teaching(records)
        if not ranked:
            return GeneratorDelta()
        self.trust.learn(records)
        k = _elite_size(len(ranked), elite_fraction, max_elite)
        elite = [r.arch for r in ranked[:k]]
        weights = list(_rank_weights(len(elite)))
        if predicted:
            extra = list(predicted)[: max(1, k // 2)]
            elite += extra
            weights += [0.5 * w for w in _rank_weights(len(extra))]
        if use_responses:
            # what the probes say the elite networks should have been: each response moves
            # its decision (e.g. a width toward the channels that carry importance, a block
            # whose removal costs little toward removal), weighted by the network's rank and by
            # how far responses of that kind have proved right (self.trust)
            for record, w in zip(ranked[:k], _rank_weights(k)):
                suggestion = self.suggested_architecture(record)
                if suggestion is not None:
                    arch, confidence = suggestion
                    elite.append(arch)
                    weights.append(w * confidence)
        return self._delta_toward(generator, elite, np.array(weights), learning_rate)

    def probe_suggestions(self, records: Sequence[Record], elite_fraction: float = 0.25,
                          max_elite: int = 12) -> list[Architecture]:
        """The networks the probes of the elite (as `generator_delta` ranks it) suggest, best
        first. The engine offers them for screening beside θ_G's samples: training one tests its
        source's advice directly (`ProbeTrust` judges it whatever the distance), where a sample of
        θ_G almost never lands within a few decisions of a probed network.

        A network that was trained and missed the requirements also gets deeper rungs (up to
        `SHRINK_RUNGS`): every decision its probes asked to shrink is taken 1, 2, ... options past
        the target, the rest as suggested. When a MAC or latency bound is far below the elite, as
        under a strict compression target, the probes' advice is the right direction but one
        step is too short; screening (counts are cheap) finds the first rung under the bound."""
        ranked = self._ranked_for_teaching(records)
        chosen: list[Architecture] = []
        for record in ranked[:_elite_size(len(ranked), elite_fraction, max_elite)]:
            rungs = SHRINK_RUNGS if record.feasible is False else 1
            for rung in range(1, rungs + 1):
                suggestion = self.suggested_architecture(record, rung)
                if suggestion is None:
                    break
                if suggestion[0] not in chosen:
                    chosen.append(suggestion[0])
        return chosen

    def _ranked_for_teaching(self, records: Sequence[Record]) -> list[Record]:
        """Trained records best first: the feasible ones by U, or, while none is feasible, all
        of them by how far they miss 1_r (then by U)."""
        scored = [r for r in records if r.score is not None]
        feasible = [r for r in scored if r.feasible]
        if feasible:
            return sorted(feasible, key=lambda r: -r.score)
        return sorted(scored, key=lambda r: (self.requirements.violation(r.metrics or {}, only_known=True) or 0.0,
                                             -r.score))

    def suggested_architecture(self, record: Record, rung: int = 1) -> Optional[tuple[Architecture, float]]:
        """The record's network with every trusted probed decision set to its response target,
        and the mean of response weight times trust over the decisions that changed; None when
        no response changes anything. Responses of a kind that has misled more often than not
        (trust below 0.5) are left out. A "keep" response changes nothing, so it is not counted:
        a suggestion equal to its network would only add that network to the elite twice.
        `rung` > 1 takes every decision whose target is smaller than its value `rung - 1` options
        further down (a continuous one as far again per rung), within its domain."""
        if not record.responses:
            return None
        values = record.arch.as_dict()
        weights = []
        by_name = {key_name(d.key): d for d in self.space.all_decisions}
        for name, response in record.responses.items():
            d = by_name.get(name)
            if d is None or d.key not in values or not isinstance(response, Mapping) or "target" not in response:
                continue
            weight = response.get("weight", 1.0)
            trust = self.trust.trust(name)
            if not _is_number(weight) or weight <= 0 or trust < 0.5:
                continue
            try:
                if isinstance(d, ChoiceDecision):
                    if d.subspaces[values[d.key]] or d.nested:
                        continue  # changing a nested choice would need its sub-decisions
                    target = self.space.parse_decision_value(d, response["target"])
                elif _is_number(response["target"]):
                    target = d.validate(d.legalize(float(response["target"])))
                else:
                    continue
            except SearchSpaceError:
                continue
            if target == values[d.key]:
                continue  # "keep": the network already has it (a claim the trust judges, no change)
            values[d.key] = _past_target(d, values[d.key], target, rung - 1) if rung > 1 else target
            weights.append(float(min(weight, 1.0)) * trust)
        if not weights:
            return None
        return self.space.make(list(values.items())), float(np.mean(weights))

    def _delta_toward(self, generator: Generator, elite: Sequence[Architecture], weights: np.ndarray,
                      learning_rate: float) -> GeneratorDelta:
        delta = GeneratorDelta()
        x = self.features(elite)
        for i, d in enumerate(self.space.all_decisions):
            column = x[:, i]
            active = ~np.isnan(column)
            if not active.any():
                continue
            w = weights[active] / weights[active].sum()
            values = column[active]
            if isinstance(d, ChoiceDecision):
                p = generator.probabilities(i)
                counts = np.zeros(d.size)
                np.add.at(counts, values.astype(int), w)
                target = 0.7 * counts + 0.3 * p  # keep part of the old belief
                delta.logits[i] = learning_rate * (np.log(target + 1e-12) - np.log(p + 1e-12))
            else:
                units = np.array([d.to_unit(d.from_unit(v)) if d.bounded else v for v in values])
                if not d.bounded:  # back from the squashed coordinate to the standard score
                    units = ndtri(np.clip(units, 1e-6, 1 - 1e-6))
                mean = generator.mean[i]
                target_mean = float(np.sum(w * units))
                target_std = math.sqrt(float(np.sum(w * np.square(units - mean)))) or generator.min_std
                delta.mean[i] = learning_rate * (target_mean - mean)
                delta.log_std[i] = learning_rate * (math.log(max(target_std, generator.min_std)) - generator.log_std[i])
        return delta


def _past_target(decision: object, value: object, target: object, steps: int) -> object:
    """A shrinking move continued `steps` further: for a choice of numbers, the option `steps`
    below the target in value order; for a continuous decision, `steps` times the move again.
    Moves that grow the value, or between non-numeric options, stay at the target."""
    if isinstance(decision, ChoiceDecision):
        options = decision.options
        if not all(_is_number(o) for o in options) or not options[target] < options[value]:
            return target
        below = sorted((i for i, o in enumerate(options) if o < options[target]), key=lambda i: -options[i])
        return below[min(steps, len(below)) - 1] if below else target
    if not (_is_number(value) and _is_number(target)) or not target < value:
        return target
    return decision.validate(decision.legalize(float(target) - steps * (float(value) - float(target))))


def _newest_known(records: Sequence[Record], value_of: Callable[[Mapping], Optional[float]],
                  limit: int) -> list[tuple[Architecture, float]]:
    """The last `limit` (arch, value) pairs of the records whose metrics give a value, in record
    order (scanned from the end: the cost does not grow with the number of records)."""
    out = []
    for r in reversed(records):
        if len(out) >= limit:
            break
        value = value_of(r.metrics) if r.metrics else None
        if _is_number(value):
            out.append((r.arch, value))
    out.reverse()
    return out


def _reader(metric: str) -> Callable[[Mapping], Optional[float]]:
    return lambda metrics: finite_float(metrics.get(metric))


def _shares_requirement_model(objective: Objective, metric_models: Mapping[str, object]) -> bool:
    """Whether an objective is a plain metric a requirement surrogate already models."""
    return objective.metric in metric_models and objective.metric not in NETSCORE_COST


MAX_U_POINTS = 400  # results the surrogate of U is conditioned on (its cost grows with n³)


def active_set(z: np.ndarray, feasible: Sequence[bool], cap: int) -> np.ndarray:
    """Indices of at most `cap` results for the surrogate of U: all of them while there are few;
    beyond, the best quarter (feasible first), the newest quarter, and an even spread over the
    rest, so the surrogate stays sharp where the search is and still sees the whole space. The
    choice depends on the data alone (a resumed search conditions on the same points)."""
    n = len(z)
    if n <= cap:
        return np.arange(n)
    order = np.lexsort((-z, ~np.asarray(feasible, dtype=bool)))  # feasible first, then by U
    chosen = set(order[: cap // 4].tolist()) | set(range(n - cap // 4, n))
    rest = np.array([i for i in range(n) if i not in chosen])
    room = cap - len(chosen)
    if room > 0 and len(rest):
        chosen.update(rest[np.linspace(0, len(rest) - 1, num=min(room, len(rest))).astype(int)].tolist())
    return np.array(sorted(chosen))


def copula(values: np.ndarray) -> np.ndarray:
    """Gaussian copula transform: ranks mapped to standard-normal quantiles.

    U can be anything a user reports, often with outliers (a diverged training, a
    disconnected cell at chance accuracy) that would dominate a GP fitted on raw values; the
    transform keeps only the order, which is all the search needs (Salinas et al., 2020)."""
    return ndtri((rankdata(values) - 0.5) / len(values))


def _elite_size(n: int, fraction: float, cap: int) -> int:
    """How many of n ranked records form the elite: a fraction of them, at least 2, at most cap."""
    return max(2, min(cap, int(math.ceil(fraction * n))))


def _rank_weights(n: int) -> np.ndarray:
    """Log-linear rank weights (best first), summing to 1."""
    if n <= 0:
        return np.zeros(0)
    w = np.log(n + 1.0) - np.log(np.arange(1, n + 1))
    return w / w.sum()


def _is_number(value: object) -> bool:
    return finite_float(value) is not None
