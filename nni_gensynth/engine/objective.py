"""The universal performance function U and the operational-requirements indicator 1_r.

NetScore (Wong, 2018, "NetScore: Towards Universal Metrics for Large-scale Performance
Analysis of Deep Neural Networks for Practical On-Device Edge Usage"):

    Ω(N) = 20 · log10( a^α / (p^β · m^γ) ),   α = 2, β = γ = 0.5

with a = top-1 accuracy in percent, p = parameters in millions and m = multiply-accumulates
in billions (GMACs). The hardware variant `netscore_hw` replaces m by measured latency in
milliseconds, so the score rewards what the device actually does rather than a FLOPs proxy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .metrics import finite_float

# A measured metric may come with the far ends of its 95% interval: "latency_ms_upper" beside
# "latency_ms". Requirements judge a `max` bound on the upper end, a `min` bound on the lower one.
UPPER_SUFFIX = "_upper"
LOWER_SUFFIX = "_lower"

ACCURACY = "accuracy"  # the metric a trial reports its validation accuracy as (fraction or percent)

MAXIMIZE = "maximize"
MINIMIZE = "minimize"

# Objective names computed from other metrics rather than read from the report: the cost
# metric each puts in NetScore's denominator, and the log10 of the unit it is counted in.
NETSCORE_COST = {"netscore": ("macs", 9), "netscore_hw": ("latency_ms", 0)}
DERIVED_OBJECTIVES = tuple(NETSCORE_COST)


def accuracy_percent(accuracy: float) -> float:
    """Accuracy in percent; values in [0, 1] are read as fractions (0.93 -> 93.0)."""
    return accuracy * 100.0 if accuracy <= 1.0 else float(accuracy)


def accuracy_in_range(accuracy: Any) -> Optional[float]:
    """Accuracy in percent (fraction or percent as `accuracy_percent` reads it) when it is a finite
    number in [0, 100 %]; None otherwise (no score and no evidence can come from it)."""
    a = finite_float(accuracy)
    if a is None or a < 0:
        return None
    a = accuracy_percent(a)
    return a if a <= 100.0 else None


def netscore(accuracy: float, params: float, macs: float,
             alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> float:
    """NetScore Ω in dB from accuracy (fraction or %), a parameter count and a MAC count.

    `params` and `macs` are raw counts; they are converted to millions and billions here.
    ValueError when they do not define a score (see `netscore_db`)."""
    score = netscore_db(accuracy, params, macs, NETSCORE_COST["netscore"][1], alpha, beta, gamma)
    if score is None:
        raise ValueError(f"netscore needs an accuracy in (0, 100%] and positive, finite params and macs "
                         f"(got {accuracy!r}, {params!r}, {macs!r})")
    return score


def netscore_hw(accuracy: float, params: float, latency_ms: float,
                alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> float:
    """Hardware NetScore in dB: NetScore with measured latency in ms in place of GMACs."""
    score = netscore_db(accuracy, params, latency_ms, NETSCORE_COST["netscore_hw"][1], alpha, beta, gamma)
    if score is None:
        raise ValueError(f"netscore_hw needs an accuracy in (0, 100%] and positive, finite params and "
                         f"latency_ms (got {accuracy!r}, {params!r}, {latency_ms!r})")
    return score


def netscore_db(accuracy: Any, params: Any, cost: Any, cost_unit_log10: int,
                alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> Optional[float]:
    """Ω = 20·log10(a^α / (p^β · m^γ)), or None unless 0 < a <= 100 % and params and cost are
    positive and finite. a: accuracy (fraction or %); p: params / 1e6; m: cost / 10^cost_unit_log10
    (9 for a MAC count in GMACs, 0 for a latency in ms).

    A sum of logarithms, so it is finite for every input it accepts, where the quotient of
    powers would overflow (an accuracy of 1e200) or underflow (a latency of 1e-320)."""
    a, p, m = accuracy_in_range(accuracy), finite_float(params), finite_float(cost)
    if a is None or p is None or m is None or a <= 0 or p <= 0 or m <= 0:
        return None
    log_p, log_m = math.log10(p) - 6, math.log10(m) - cost_unit_log10
    return 20.0 * (alpha * math.log10(a) - beta * log_p - gamma * log_m)


@dataclass(frozen=True)
class Objective:
    """U: which metric to optimise and in which direction.

    `metric` is a reported key, "default", "netscore" (needs accuracy, params, macs) or
    "netscore_hw" (needs accuracy, params, latency_ms).
    """

    metric: str = "default"
    mode: str = MAXIMIZE

    def __post_init__(self) -> None:
        if self.mode not in (MAXIMIZE, MINIMIZE):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {self.mode!r}")
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"objective must be a non-empty metric name, got {self.metric!r}")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The metric keys U reads (the metric itself, and what a derived objective is computed from)."""
        if self.metric in NETSCORE_COST:
            return (self.metric, ACCURACY, "params", NETSCORE_COST[self.metric][0])
        return (self.metric,)

    def value(self, metrics: Mapping[str, Any]) -> Optional[float]:
        """U for one result, or None when the result does not carry what U needs (a missing,
        non-finite or out-of-range value is None, never an exception)."""
        if self.metric in metrics:
            return finite_float(metrics[self.metric])
        if self.metric in NETSCORE_COST:
            cost, unit_log10 = NETSCORE_COST[self.metric]
            return netscore_db(metrics.get(ACCURACY), metrics.get("params"), metrics.get(cost), unit_log10)
        return None

    def score(self, metrics: Mapping[str, Any]) -> Optional[float]:
        """U oriented so that larger is better (negated for 'minimize')."""
        u = self.value(metrics)
        if u is None:
            return None
        return u if self.mode == MAXIMIZE else -u


@dataclass(frozen=True)
class Bound:
    """One operational requirement: min <= metric <= max (either side optional)."""

    metric: str
    min: Optional[float] = None
    max: Optional[float] = None

    def violation(self, value: float) -> float:
        """0 when met, else the relative distance to the bound (scale-free, > 0)."""
        if self.max is not None and value > self.max:
            return (value - self.max) / max(abs(self.max), 1e-12)
        if self.min is not None and value < self.min:
            return (self.min - value) / max(abs(self.min), 1e-12)
        return 0.0


class Requirements:
    """1_r: the human-specified operational requirements, e.g. {"latency_ms": {"max": 25}}."""

    def __init__(self, constraints: Optional[Mapping[str, Any]] = None) -> None:
        self.bounds: tuple[Bound, ...] = tuple(_parse_constraints(constraints or {}))

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics the requirements read."""
        return tuple(b.metric for b in self.bounds)

    def minimum(self, metric: str) -> Optional[float]:
        """The highest `min` the requirements set on `metric` (None when none does)."""
        mins = [b.min for b in self.bounds if b.metric == metric and b.min is not None]
        return max(mins) if mins else None

    def to_config(self) -> dict[str, dict[str, float]]:
        """The constraints mapping this object was built from (normalised)."""
        out: dict[str, dict[str, float]] = {}
        for b in self.bounds:
            out[b.metric] = {k: v for k, v in (("min", b.min), ("max", b.max)) if v is not None}
        return out

    def violation(self, metrics: Mapping[str, Any], only_known: bool = False) -> Optional[float]:
        """Summed relative violation over the bounds (inf when it overflows); None when a needed
        metric is missing or not a finite number (unless `only_known`, which judges only the
        usable metrics present). Never raises, whatever the values."""
        total = 0.0
        for b in self.bounds:
            value = finite_float(metrics.get(b.metric))
            if value is None:
                if only_known:
                    continue
                return None
            total += b.violation(_bounded(metrics, b, value))
        return total

    def is_met(self, metrics: Mapping[str, Any], only_known: bool = False) -> Optional[bool]:
        """1_r(N): True/False, or None when a needed metric is unknown (see `violation`)."""
        v = self.violation(metrics, only_known=only_known)
        return None if v is None else v == 0.0

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def __repr__(self) -> str:
        return f"Requirements({self.to_config()!r})"


def _bounded(metrics: Mapping[str, Any], bound: Bound, value: float) -> float:
    """The value a bound judges: a noisy measurement reports the far end of its 95% interval
    beside its median (`latency_ms_upper`, `latency_ms_lower`), and a `max` requirement is then
    met only if the upper end meets it (a `min` one, the lower end), so noise cannot pass a
    network that breaks the requirement. Without such a figure, the value itself."""
    if bound.max is not None:
        upper = finite_float(metrics.get(f"{bound.metric}{UPPER_SUFFIX}"))
        if upper is not None and upper > value:
            value = upper
    if bound.min is not None:
        lower = finite_float(metrics.get(f"{bound.metric}{LOWER_SUFFIX}"))
        if lower is not None and lower < value:
            value = lower
    return value


def _parse_constraints(constraints: Mapping[str, Any]) -> list[Bound]:
    if not isinstance(constraints, Mapping):
        raise TypeError(f"constraints must be a mapping of metric -> {{'min': x, 'max': y}}, "
                        f"got {type(constraints).__name__}")
    bounds = []
    for metric, spec in constraints.items():
        where = f"constraints[{metric!r}]"
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"constraints: metric names must be non-empty strings, got {metric!r}")
        if not isinstance(spec, Mapping):
            raise TypeError(f"{where} must be a mapping like {{'max': 25}}, got {spec!r}")
        unknown = set(spec) - {"min", "max"}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; only 'min' and 'max' are allowed")
        if not spec:
            raise ValueError(f"{where} must give 'min', 'max' or both")
        values = {}
        for side in ("min", "max"):
            if side in spec:
                v = finite_float(spec[side])
                if v is None:
                    raise ValueError(f"{where}[{side!r}] must be a finite number, got {spec[side]!r}")
                values[side] = v
        if "min" in values and "max" in values and values["min"] > values["max"]:
            raise ValueError(f"{where}: min {values['min']} is greater than max {values['max']}")
        bounds.append(Bound(metric, values.get("min"), values.get("max")))
    return bounds
