"""Operational requirements in the DESIGN.md form {metric: {"max": x} | {"min": x} | both}."""
from __future__ import annotations

import importlib
from typing import Callable, Mapping

Constraints = Mapping[str, Mapping[str, float]]


def check_constraints(constraints: Constraints) -> dict[str, dict[str, float]]:
    """A validated copy; names the metric or bound that is wrong."""
    if not isinstance(constraints, Mapping) or not constraints:
        raise ValueError(f"constraints must be a non-empty dict {{metric: {{'max': x}}}}, got {constraints!r}")
    checked: dict[str, dict[str, float]] = {}
    for metric, bounds in constraints.items():
        if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"min", "max"}:
            raise ValueError(f"constraints[{metric!r}] must be {{'max': x}} and/or {{'min': x}}, got {bounds!r}")
        checked[metric] = {k: float(v) for k, v in bounds.items()}
    return checked


def violations(metrics: Mapping[str, float], constraints: Constraints) -> list[float]:
    """One value per bound, <= 0 when met (Optuna's constraints_func convention)."""
    values = []
    for metric, bounds in constraints.items():
        if metric not in metrics:
            raise KeyError(f"metric {metric!r} needed by the constraints is not among {sorted(metrics)}")
        if "max" in bounds:
            values.append(float(metrics[metric]) - bounds["max"])
        if "min" in bounds:
            values.append(bounds["min"] - float(metrics[metric]))
    return values


def meets(metrics: Mapping[str, float], constraints: Constraints) -> bool:
    return all(v <= 0 for v in violations(metrics, constraints))


def load_profiler(spec: str) -> Callable[[dict], dict]:
    """'module:callable' -> the callable."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"profiler must be 'module:callable', got {spec!r}")
    module_name, attr = spec.split(":")
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise ValueError(f"profiler {spec!r}: {module_name} has no callable {attr!r}")
    return function
