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

MAXIMIZE = "maximize"
MINIMIZE = "minimize"

# Objective names computed from other metrics rather than read from the report.
DERIVED_OBJECTIVES = ("netscore", "netscore_hw")


def accuracy_percent(accuracy: float) -> float:
    """Accuracy in percent; values in [0, 1] are read as fractions (0.93 -> 93.0)."""
    return accuracy * 100.0 if accuracy <= 1.0 else float(accuracy)


def netscore(accuracy: float, params: float, macs: float,
             alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> float:
    """NetScore Ω in dB from accuracy (fraction or %), a parameter count and a MAC count.

    `params` and `macs` are raw counts; they are converted to millions and billions here.
    """
    a = accuracy_percent(accuracy)
    p = params / 1e6
    m = macs / 1e9
    if a <= 0 or p <= 0 or m <= 0:
        raise ValueError(f"netscore needs positive accuracy, params and macs (got {accuracy}, {params}, {macs})")
    return 20.0 * math.log10(a ** alpha / (p ** beta * m ** gamma))


def netscore_hw(accuracy: float, params: float, latency_ms: float,
                alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> float:
    """Hardware NetScore in dB: NetScore with measured latency in ms in place of GMACs."""
    a = accuracy_percent(accuracy)
    p = params / 1e6
    if a <= 0 or p <= 0 or latency_ms <= 0:
        raise ValueError(
            f"netscore_hw needs positive accuracy, params and latency_ms (got {accuracy}, {params}, {latency_ms})")
    return 20.0 * math.log10(a ** alpha / (p ** beta * latency_ms ** gamma))


def _finite(value: Any) -> Optional[float]:
    """`value` as a float when it is a finite number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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

    def value(self, metrics: Mapping[str, Any]) -> Optional[float]:
        """U for one result, or None when the result does not carry what U needs."""
        if self.metric in metrics:
            return _finite(metrics[self.metric])
        if self.metric in DERIVED_OBJECTIVES:
            acc = _finite(metrics.get("accuracy"))
            params = _finite(metrics.get("params"))
            cost = _finite(metrics.get("macs" if self.metric == "netscore" else "latency_ms"))
            if acc is None or params is None or cost is None or min(acc, params, cost) <= 0:
                return None
            fn = netscore if self.metric == "netscore" else netscore_hw
            return fn(acc, params, cost)
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

    def to_config(self) -> dict[str, dict[str, float]]:
        """The constraints mapping this object was built from (normalised)."""
        out: dict[str, dict[str, float]] = {}
        for b in self.bounds:
            out[b.metric] = {k: v for k, v in (("min", b.min), ("max", b.max)) if v is not None}
        return out

    def violation(self, metrics: Mapping[str, Any], only_known: bool = False) -> Optional[float]:
        """Summed relative violation over the bounds; None when a needed metric is missing
        (unless `only_known`, which judges only the metrics present)."""
        total = 0.0
        for b in self.bounds:
            value = _finite(metrics.get(b.metric))
            if value is None:
                if only_known:
                    continue
                return None
            total += b.violation(value)
        return total

    def is_met(self, metrics: Mapping[str, Any], only_known: bool = False) -> Optional[bool]:
        """1_r(N): True/False, or None when a needed metric is missing (see `violation`)."""
        v = self.violation(metrics, only_known=only_known)
        return None if v is None else v == 0.0

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def __repr__(self) -> str:
        return f"Requirements({self.to_config()!r})"


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
                v = _finite(spec[side])
                if v is None:
                    raise ValueError(f"{where}[{side!r}] must be a finite number, got {spec[side]!r}")
                values[side] = v
        if "min" in values and "max" in values and values["min"] > values["max"]:
            raise ValueError(f"{where}: min {values['min']} is greater than max {values['max']}")
        bounds.append(Bound(metric, values.get("min"), values.get("max")))
    return bounds
