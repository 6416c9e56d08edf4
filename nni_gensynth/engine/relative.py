"""Requirements stated relative to the prototype: "latency at most a quarter of the prototype's".

A bound may be a number or an expression of the prototype's own figure:

    constraints:
      accuracy:   {min: "prototype - 0.005"}    # within half a point of the prototype
      latency_ms: {max: "prototype / 4"}        # 4x faster
      macs:       {max: "prototype * 0.1"}      # 10x fewer MACs
      params:     {max: "0.1 * prototype"}

`split_relative` separates the numeric bounds from the expressions (so they can be validated at
once), and `resolve_relative` turns the expressions into numbers from the prototype's measured
and trained metrics, which the tuner obtains by evaluating the prototype first.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

PROTOTYPE = "prototype"
BOUNDS = ("min", "max")
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?"
_PROTOTYPE_FIRST = re.compile(rf"^\s*{PROTOTYPE}\s*(?:([-+*/])\s*({_NUMBER}))?\s*$")
_NUMBER_FIRST = re.compile(rf"^\s*({_NUMBER})\s*\*\s*{PROTOTYPE}\s*$")


@dataclass(frozen=True)
class RelativeBound:
    """`prototype <op> operand` (op one of + - * /; "prototype" alone is `* 1`)."""

    op: str
    operand: float
    text: str

    def resolve(self, prototype_value: float) -> float:
        """The bound for a prototype whose figure is `prototype_value`."""
        value = {"+": prototype_value + self.operand, "-": prototype_value - self.operand,
                 "*": prototype_value * self.operand, "/": prototype_value / self.operand}[self.op]
        return float(value)


def parse_bound(text: str, where: str) -> RelativeBound:
    """A RelativeBound from its text; ValueError naming `where` when it is not one."""
    match = _PROTOTYPE_FIRST.match(text)
    if match:
        op, operand = match.group(1) or "*", float(match.group(2) or 1.0)
    else:
        match = _NUMBER_FIRST.match(text)
        if not match:
            raise ValueError(f"{where} must be a number or an expression of the prototype's figure such as "
                             f"'prototype / 4', 'prototype - 0.005' or '0.1 * prototype', got {text!r}")
        op, operand = "*", float(match.group(1))
    if not math.isfinite(operand) or (op == "/" and operand == 0):
        raise ValueError(f"{where}: {text!r} does not give a finite bound")
    return RelativeBound(op, operand, text.strip())


def split_relative(constraints: Optional[Mapping[str, Any]]) -> tuple[dict, dict]:
    """(numeric constraints, {metric: {bound: RelativeBound}}) from a constraints mapping.

    Only the expressions are parsed here; the numeric part is left to `Requirements`."""
    absolute: dict[str, Any] = {}
    relative: dict[str, dict[str, RelativeBound]] = {}
    if constraints is None:
        return absolute, relative
    if not isinstance(constraints, Mapping):
        return dict(constraints), relative  # type: ignore[call-overload]  # Requirements names the error
    for metric, spec in constraints.items():
        if not isinstance(spec, Mapping):
            absolute[metric] = spec
            continue
        numeric = {}
        for bound, value in spec.items():
            if bound in BOUNDS and isinstance(value, str):
                relative.setdefault(metric, {})[bound] = parse_bound(value, f"constraints[{metric!r}].{bound}")
            else:
                numeric[bound] = value
        if numeric or metric not in relative:
            absolute[metric] = numeric
    return absolute, relative


def resolve_relative(constraints: Optional[Mapping[str, Any]],
                     prototype_metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The constraints with every relative bound replaced by its value for the prototype.

    ValueError when the prototype did not report a metric a bound refers to."""
    absolute, relative = split_relative(constraints)
    resolved = {metric: dict(spec) for metric, spec in absolute.items()}
    for metric, bounds in relative.items():
        value = prototype_metrics.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"constraints[{metric!r}] is relative to the prototype, but the prototype's "
                             f"evaluation gave no {metric} (got {value!r})")
        for bound, rel in bounds.items():
            resolved.setdefault(metric, {})[bound] = round(rel.resolve(float(value)), 12)
    return resolved


def has_relative(constraints: Optional[Mapping[str, Any]]) -> bool:
    """Whether any bound is an expression of the prototype's figure."""
    return bool(split_relative(constraints)[1])
