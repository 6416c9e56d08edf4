"""Silent no-ops, said out loud: an objective or a requirement that no result ever reports.

An objective key that no trial reports makes every result a failure; a constraint on a metric
that neither the trials nor the profiler report makes every result infeasible (its feasibility is
never known). Both look like a search that learns nothing. `unreported_metrics` names them, with
the keys the results do report, so the tuner can warn in its log and the report can show it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Union

from .front import Objectives
from .objective import Objective, Requirements

MIN_RESULTS = 3  # results seen before a missing metric is worth a warning
SHOWN_KEYS = 12  # reported keys listed in a warning


def unreported_metrics(objective: Union[Objective, Objectives], requirements: Requirements,
                       results: Iterable[Mapping[str, Any]]) -> list[str]:
    """One warning per metric that U or 1_r reads and none of `results` carries ([] while fewer
    than MIN_RESULTS results are known)."""
    results = [r for r in results if isinstance(r, Mapping)]
    if len(results) < MIN_RESULTS:
        return []
    seen: set[str] = set()
    for result in results:
        seen.update(k for k in result if isinstance(k, str))
    shown = ", ".join(sorted(seen)[:SHOWN_KEYS]) + (", ..." if len(seen) > SHOWN_KEYS else "")
    warnings = []
    for one in getattr(objective, "objectives", (objective,)):  # several in multi-objective mode
        needed = [m for m in one.inputs[1:] if m not in seen] if one.metric not in seen else []
        if one.metric not in seen and (len(one.inputs) == 1 or needed):
            what = f" (nor {', '.join(needed)}, which it is computed from)" if needed else ""
            warnings.append(f"objective {one.metric!r}: none of {len(results)} results reports it{what}, so "
                            f"every result counts as failed; the results report: {shown or 'nothing'}")
    for metric in requirements.metrics:
        if metric not in seen:
            warnings.append(f"constraint on {metric!r}: none of {len(results)} results or measurements reports it, "
                            f"so no result can be judged feasible; the results report: {shown or 'nothing'}")
    return warnings
