"""Why NNI TPE is flat on this benchmark: count the suggestions its Deduplicator replaced.

NNI's TpeTuner passes every proposal through nni.common.hpo_utils.Deduplicator. On a small
categorical space TPE soon proposes a cell it already tried; the Deduplicator then switches to grid
search and returns the next untried grid point instead, enumerating from (none, none, ..., none).
This script replays the benchmark protocol with a spy on that Deduplicator.

    .venv/bin/python -m benchmarks.nb201_lib.diagnose_nni_tpe --seeds 20 --budget 200
"""
from __future__ import annotations

import argparse
import logging
import statistics

from .data import LATENCY_LIMIT_MS, load_table, search_space
from .harness import metrics_for


def diagnose(seed: int, budget: int, optimize_mode: str = "maximize") -> dict:
    from nni.algorithms.hpo.tpe_tuner import TpeTuner

    table = load_table()
    tuner = TpeTuner(optimize_mode=optimize_mode, seed=seed)
    tuner.update_search_space(search_space())
    original, replaced = tuner.dedup, []

    def spy(formatted):
        result = original(formatted)
        replaced.append(result is not formatted)
        return result

    tuner.dedup = spy
    best_tpe = best_grid = 0.0
    for parameter_id in range(budget):
        parameters = tuner.generate_parameters(parameter_id)
        cell = table.lookup(parameters)
        if cell.latency_ms <= LATENCY_LIMIT_MS:
            if replaced[-1]:
                best_grid = max(best_grid, cell.accuracy)
            else:
                best_tpe = max(best_tpe, cell.accuracy)
        tuner.receive_trial_result(parameter_id, parameters, metrics_for(cell.accuracy, cell.latency_ms))
        tuner.trial_end(parameter_id, True)
    return {"seed": seed, "grid_replacements": sum(replaced),
            "first_replacement": replaced.index(True) + 1 if any(replaced) else None,
            "best_feasible_from_tpe": best_tpe, "best_feasible_from_grid": best_grid}


def main() -> None:
    parser = argparse.ArgumentParser(description="NNI TPE deduplication diagnosis on NAS-Bench-201")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--optimize-mode", default="maximize", choices=["maximize", "minimize"])
    args = parser.parse_args()
    logging.getLogger("nni").setLevel(logging.WARNING)
    rows = [diagnose(seed, args.budget, args.optimize_mode) for seed in range(args.seeds)]
    for row in rows:
        print(row)
    print(f"median over {args.seeds} seeds: {statistics.median(r['grid_replacements'] for r in rows)} of "
          f"{args.budget} suggestions replaced by grid points; first replacement at training "
          f"{statistics.median(r['first_replacement'] or args.budget for r in rows)}")


if __name__ == "__main__":
    main()
