"""Runs -> per-tuner figures (median and IQR over seeds), the printed table and the JSON document."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..paired import paired_test
from .data import LATENCY_LIMIT_MS, Table
from .harness import RunRecord
from .tuners import LABELS

LAST_SUGGESTIONS = 10  # "with 200 observations": mean of a run's last 10 suggestions, median over seeds
NEAR_OPTIMUM = 0.2  # points below the optimum that count as "found it" (the search issue's target at 50)
STUCK_BELOW = 90.0  # a best feasible accuracy under this is a run stuck away from the top cells


def quartiles(values: Sequence[float]) -> dict[str, float]:
    """Median and quartiles over seeds, rounded to 4 decimals."""
    q25, q50, q75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": round(float(q50), 4), "q25": round(float(q25), 4), "q75": round(float(q75), 4)}


def summarize_tuner(runs: Sequence[RunRecord], budgets: Sequence[int]) -> dict:
    """Figures for one tuner over its seeds; budgets are read off the same runs (best-so-far)."""
    curves = np.array([run.best_feasible() for run in runs])
    feasible = np.array([[lat <= LATENCY_LIMIT_MS for lat in run.latency_ms] for run in runs])
    calls = np.array([run.profiler_calls for run in runs], dtype=float)
    all_ms = np.concatenate([run.suggest_ms for run in runs])
    last_ms = [float(np.mean(run.suggest_ms[-LAST_SUGGESTIONS:])) for run in runs]
    per_budget = {}
    for budget in budgets:
        per_budget[str(budget)] = {
            "best_feasible_accuracy": quartiles(curves[:, budget - 1]),
            "per_seed": [_best_of(run, budget) for run in runs],
            "feasible_fraction": round(float(feasible[:, :budget].mean()), 4),
            "profiler_calls_per_training": round(float(calls[:, budget - 1].mean() / budget), 4),
        }
    return {
        "label": LABELS.get(runs[0].tuner, runs[0].tuner),
        "seeds": [run.seed for run in runs],
        "budgets": per_budget,
        "ms_per_suggestion": {
            "median": round(float(np.median(all_ms)), 4),
            f"at_{max(budgets)}_observations": round(float(np.median(last_ms)), 4),
            "definition": f"median over all suggestions; at_N: median over seeds of the mean of the last "
                          f"{LAST_SUGGESTIONS} suggestions of an N-training run (wall clock, shared CPU)",
        },
        "distinct_architectures_fraction": round(float(np.mean([r.distinct_architectures / r.budget for r in runs])), 4),
        "setup_profiler_calls": int(max(run.setup_profiler_calls for run in runs)),
        "wall_s_total": round(float(sum(run.wall_s for run in runs)), 2),
        "curve": {k: [round(float(v), 4) for v in np.percentile(curves, q, axis=0)]
                  for k, q in (("q25", 25), ("median", 50), ("q75", 75))},
    }


def _best_of(run: RunRecord, trainings: int) -> dict:
    index = run.best_feasible_index(trainings)
    if index is None:
        return {"seed": run.seed, "accuracy": 0.0, "latency_ms": None, "architecture": None, "training": None}
    return {"seed": run.seed, "accuracy": run.accuracy[index], "latency_ms": run.latency_ms[index],
            "architecture": run.architectures[index], "training": index + 1}


def reference(table: Table) -> dict:
    """Optimum and runners-up under the latency limit, computed from the data."""
    top = table.top_feasible(5)
    feasible = sum(1 for c in table.cells.values() if c.latency_ms <= LATENCY_LIMIT_MS)
    return {"latency_limit_ms": LATENCY_LIMIT_MS, "optimum": top[0], "next": top[1:],
            "cells": len(table.cells), "feasible_cells": feasible}


def format_table(results: dict, budgets: Sequence[int], ref: dict) -> str:
    """The plain-text table printed at the end of a run."""
    head = (f"{'tuner':<28}" + "".join(f"{'best@' + str(b):>16}" for b in budgets)
            + f"{'feasible':>10}{'calls/train':>12}{'ms/sugg':>9}{'ms@' + str(max(budgets)):>9}")
    lines = [f"NAS-Bench-201 CIFAR-10, Pi 4 latency <= {ref['latency_limit_ms']:g} ms; "
             f"optimum {ref['optimum']:.2f}, next {', '.join(f'{v:.2f}' for v in ref['next'])}",
             "best feasible validation accuracy: median [IQR] over seeds", head, "-" * len(head)]
    top = str(max(budgets))
    for summary in results.values():
        row = f"{summary['label']:<28}"
        for budget in budgets:
            q = summary["budgets"][str(budget)]["best_feasible_accuracy"]
            row += f"{q['median']:>7.2f} [{q['q25']:.2f},{q['q75']:.2f}]".rjust(16)
        last = summary["budgets"][top]
        ms = summary["ms_per_suggestion"]
        row += (f"{last['feasible_fraction']:>10.2f}{last['profiler_calls_per_training']:>12.2f}"
                f"{ms['median']:>9.2f}{ms[f'at_{top}_observations']:>9.2f}")
        lines.append(row)
    return "\n".join(lines)


def format_markdown(results: dict, budgets: Sequence[int], ref: dict) -> str:
    """The same figures as a Markdown table, for the README."""
    top = str(max(budgets))
    head = (["tuner"] + [f"best @ {b} (median [IQR])" for b in budgets]
            + [f"feasible fraction @ {top}", f"profiler calls / training @ {top}", "ms / suggestion (median)",
               f"ms / suggestion @ {top} obs."])
    rows = []
    for summary in results.values():
        cells = [summary["label"]]
        cells += [quartile_cell(summary["budgets"][str(b)]["best_feasible_accuracy"], 2) for b in budgets]
        last, ms = summary["budgets"][top], summary["ms_per_suggestion"]
        cells += [f"{last['feasible_fraction']:.2f}", f"{last['profiler_calls_per_training']:.2f}",
                  f"{ms['median']:.2f}", f"{ms[f'at_{top}_observations']:.2f}"]
        rows.append(cells)
    lines = markdown_table(head, rows)
    lines.append(f"\nOptimum under {ref['latency_limit_ms']:g} ms: {ref['optimum']:.2f} "
                 f"(next {', '.join(f'{v:.2f}' for v in ref['next'])}).")
    return "\n".join(lines)


def quartile_cell(q: dict[str, float], digits: int) -> str:
    """A `quartiles` result as a table cell: "median [q25, q75]"."""
    return f"{q['median']:.{digits}f} [{q['q25']:.{digits}f}, {q['q75']:.{digits}f}]"


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: header, separator, one line per row."""
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def group_runs(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    grouped: dict[str, list[RunRecord]] = {}
    for record in records:
        grouped.setdefault(record.tuner, []).append(record)
    for runs in grouped.values():
        runs.sort(key=lambda run: run.seed)
    return grouped


def paired_comparison(results: dict, first: str, second: str, optimum: float) -> dict:
    """`first` against `second` on the same seeds, per budget: the Wilcoxon signed-rank test of the
    per-seed differences (first - second), each one's median, how many seeds came within
    NEAR_OPTIMUM of the optimum and how many stayed below STUCK_BELOW."""
    if results[first]["seeds"] != results[second]["seeds"]:
        raise ValueError(f"{first} and {second} ran different seeds; a paired test needs the same ones")
    out = {"first": first, "second": second, "seeds": len(results[first]["seeds"]), "budgets": {}}
    for budget in results[first]["budgets"]:
        runs = {name: [best["accuracy"] for best in results[name]["budgets"][budget]["per_seed"]]
                for name in (first, second)}
        test = paired_test([round(a - b, 6) for a, b in zip(runs[first], runs[second])])
        out["budgets"][budget] = {
            "test": test,
            **{name: {"median": round(float(np.median(values)), 4),
                      "near_optimum": sum(v >= optimum - NEAR_OPTIMUM - 1e-9 for v in values),
                      "stuck": sum(v < STUCK_BELOW for v in values)} for name, values in runs.items()}}
    return out


def format_paired(comparison: dict) -> str:
    """The paired comparison as a Markdown table."""
    first, second = comparison["first"], comparison["second"]
    head = ["budget", f"median {LABELS.get(first, first)}", f"median {LABELS.get(second, second)}",
            f"seeds within {NEAR_OPTIMUM} of the optimum", f"seeds below {STUCK_BELOW:g}",
            "ahead / behind / tied", "Wilcoxon p"]
    rows = []
    for budget, row in comparison["budgets"].items():
        test = row["test"]
        tied = test["n"] - test["wins"] - test["losses"]
        rows.append([budget, f"{row[first]['median']:.2f}", f"{row[second]['median']:.2f}",
                     f"{row[first]['near_optimum']} / {row[second]['near_optimum']}",
                     f"{row[first]['stuck']} / {row[second]['stuck']}",
                     f"{test['wins']} / {test['losses']} / {tied}", f"{test['p_value']:.3g}"])
    return "\n".join([f"paired over {comparison['seeds']} seeds (first / second):", *markdown_table(head, rows)])
