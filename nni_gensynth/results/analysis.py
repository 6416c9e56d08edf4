"""What a report says about an experiment: feasibility, U, the Pareto front, the best networks.

Feasibility is judged against the tuner's requirements (classArgs `constraints`) on the final
metrics; when a required metric is missing, or there are no requirements, the trial's own
`feasible` flag decides (absent flag: feasible). Only SUCCEEDED trials with a final result count.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Optional, Sequence

from ..engine.coverage import unreported_metrics
from ..engine.metrics import finite_float
from .model import ExperimentRecord, TrialRecord

# Metric columns shown in tables and summaries, in order: (key, header, unit).
METRIC_COLUMNS = (
    ("accuracy", "val. accuracy", "fraction 0-1, 95% interval"),
    ("test_accuracy", "test accuracy", "fraction 0-1, 95% interval; never seen by the search"),
    ("latency_ms", "latency", "ms, median"),
    ("latency_p90_ms", "latency p90", "ms"),
    ("energy_mj", "energy", "mJ per inference"),
    ("peak_mem_mb", "peak memory", "MB"),
    ("params", "params", "count"),
    ("macs", "MACs", "count"),
    ("netscore", "NetScore", "dB"),
    ("default", "default", "NNI default metric"),
)


def has_result(trial: TrialRecord) -> bool:
    return trial.status == "SUCCEEDED" and trial.final is not None


def is_feasible(record: ExperimentRecord, trial: TrialRecord) -> bool:
    """1_r for one finished trial (see the module doc)."""
    if not has_result(trial):
        return False
    flag = trial.final.get("feasible")
    met = record.requirements.is_met(trial.final) if record.requirements else None
    if met is not None:
        return met
    return flag if isinstance(flag, bool) else True


def utility(record: ExperimentRecord, trial: TrialRecord) -> Optional[float]:
    """U of a trial, as the tuner defined it (in the user's orientation)."""
    return record.objective.value(trial.final) if trial.final is not None else None


def ranked_feasible(record: ExperimentRecord) -> list[TrialRecord]:
    """Feasible trials, best U first (ties: higher accuracy, then lower latency)."""
    sign = 1.0 if record.objective.mode == "maximize" else -1.0
    scored = [t for t in record.trials if is_feasible(record, t) and utility(record, t) is not None]

    def key(t: TrialRecord) -> tuple:
        return (-sign * utility(record, t), -(t.metric("accuracy") or 0.0),
                t.metric("latency_ms") if t.metric("latency_ms") is not None else float("inf"))

    return sorted(scored, key=key)


def best_feasible(record: ExperimentRecord) -> Optional[TrialRecord]:
    ranked = ranked_feasible(record)
    return ranked[0] if ranked else None


def pareto_front(trials: Sequence[TrialRecord], x: str = "latency_ms", y: str = "accuracy") -> list[TrialRecord]:
    """Trials not dominated in (minimise x, maximise y), ordered by x."""
    points = sorted((t for t in trials if t.metric(x) is not None and t.metric(y) is not None),
                    key=lambda t: (t.metric(x), -t.metric(y)))
    front: list[TrialRecord] = []
    best_y = float("-inf")
    for t in points:
        if t.metric(y) > best_y:
            front.append(t)
            best_y = t.metric(y)
    return front


def trial_summary(record: ExperimentRecord, trial: TrialRecord) -> dict[str, Any]:
    """One trial as summary.json lists it: ids, parameters, every final metric, U, feasibility."""
    return {"trial_id": trial.trial_id, "parameter_id": trial.parameter_id, "status": trial.status,
            "feasible": is_feasible(record, trial), "u": utility(record, trial),
            "parameters": trial.parameters, "metrics": trial.final}


# Figures compared between the prototype and the best feasible network (smaller is better for all
# but accuracy), and the ratios prototype / best the README's synthesis table quotes.
COMPARED = ("accuracy", "test_accuracy", "params", "macs", "latency_ms", "litert_latency_ms", "energy_mj", "netscore")
RATIOS = ("params", "macs", "latency_ms", "litert_latency_ms", "energy_mj")


def prototype_comparison(record: ExperimentRecord) -> Optional[dict[str, Any]]:
    """The prototype the tuner evaluated against the best feasible network, side by side, with
    the ratios prototype / best (None when the tuner evaluated no prototype)."""
    prototype = record.prototype_result
    if not prototype:
        return None
    best = best_feasible(record)
    proto_figures = {k: finite_float(prototype.get(k)) for k in COMPARED}
    out: dict[str, Any] = {"prototype": proto_figures, "best": None, "ratios": None, "accuracy_change_points": None}
    if best is None:
        return out
    best_figures = {k: best.metric(k) for k in COMPARED}
    ratios = {}
    for key in RATIOS:
        a, b = proto_figures.get(key), best_figures.get(key)
        ratios[key] = round(a / b, 3) if a is not None and b is not None and b > 0 else None
    change = None
    if proto_figures["accuracy"] is not None and best_figures["accuracy"] is not None:
        change = round(100 * (best_figures["accuracy"] - proto_figures["accuracy"]), 3)
    out.update(best=dict(best_figures, trial_id=best.trial_id), ratios=ratios, accuracy_change_points=change)
    return out


def summarize(record: ExperimentRecord, top: int = 5) -> dict[str, Any]:
    """The content of summary.json."""
    finished = [t for t in record.trials if has_result(t)]
    feasible = [t for t in finished if is_feasible(record, t)]
    front = pareto_front(feasible)  # the trade-off among networks that meet the requirements
    objective = record.objective
    return {
        "experiment_id": record.experiment_id,
        "experiment_name": record.name,
        "status": record.status,
        "source": record.source,
        "tuner": {"name": record.tuner_name, "objective": objective.metric, "optimize_mode": objective.mode},
        "requirements": record.constraints,
        "counts": {
            "trials": len(record.trials),
            "by_status": dict(sorted(Counter(t.status for t in record.trials).items())),
            "with_results": len(finished),
            "feasible": len(feasible),
            "infeasible": len(finished) - len(feasible),
            "cycles": len(record.cycles),
        },
        "metric_units": {key: unit for key, _, unit in METRIC_COLUMNS},
        "best_feasible": [trial_summary(record, t) for t in ranked_feasible(record)[:top]],
        "pareto_front": [t.trial_id for t in front],
        "cycles": [dict(c.__dict__) for c in record.cycles],
        "prototype": prototype_comparison(record),
        "warnings": unreported_metrics(record.objective, record.requirements, [t.final for t in finished]),
    }
