"""Were the demo's candidates timed on quiet cores? (the host is a device too)

    python benchmarks/demo_latency.py EXPERIMENT_ID [--runs 5] [--spacing-s 0] [--out results/demo-latency.json]

With `hw_profile: host-cpu` the tuner and the trials time networks on the two cores where other
trials train; the host lease (nni_gensynth/hardware/host_lease.py) makes the trainings yield while a
measurement holds the host. This checks one finished experiment (e.g. the one `make demo` just
ran), read through nni_gensynth.results:

- every trial's reported median latency and its relative standard error (`latency_rse`);
  target: every one at most 3%;
- the best feasible network measured again, after the experiment, in `--runs` separate
  `gensynth profile --no-cache` processes on the quiet machine; target: they bracket the latency
  the experiment recorded (lowest <= recorded <= highest). Back to back (the default) they see
  one moment of the machine; `--spacing-s 60` starts one a minute, so they also see how its speed
  drifts over minutes, as the experiment's measurements did.

Built as the experiment's trial command builds it (builder, image size, channels, first profile).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from measure import bench_processes  # noqa: E402  (a sibling script's one process runner)

from nni_gensynth.defaults import NOISY_LATENCY_RSE  # noqa: E402
from nni_gensynth.evaluator.spec import spec_from_trial_command  # noqa: E402
from nni_gensynth.results import load_experiment  # noqa: E402
from nni_gensynth.results.analysis import best_feasible  # noqa: E402


def trial_rows(record: Any) -> list[dict[str, Any]]:
    """Each trial with a latency: id, median (ms), its RSE and the upper bound reported with a noisy one."""
    rows = []
    for trial in record.trials:
        latency = trial.metric("latency_ms")
        if latency is not None:
            rows.append({"trial": trial.trial_id, "latency_ms": latency, "latency_rse": trial.metric("latency_rse"),
                         "latency_ms_upper": trial.metric("latency_ms_upper")})
    return rows


def check(experiment_id: str, runs: int, spacing_s: float = 0.0) -> dict[str, Any]:
    record = load_experiment(experiment_id)
    spec = spec_from_trial_command(record.config.get("trialCommand"))
    if spec is None or not spec.hw_profiles:
        raise SystemExit(f"experiment {experiment_id}: its trial command is not a GenSynth trial with a hardware profile")
    rows = trial_rows(record)
    if not rows:
        raise SystemExit(f"experiment {experiment_id}: no trial reported latency_ms")
    best = best_feasible(record)
    result: dict[str, Any] = {"experiment_id": experiment_id, "profile": spec.hw_profiles[0], "trials": rows,
                              "rse_target": NOISY_LATENCY_RSE,
                              "trials_over_target": [r["trial"] for r in rows
                                                     if r["latency_rse"] is None or r["latency_rse"] > NOISY_LATENCY_RSE],
                              "best": None}
    if best is None:
        return result
    shape = f"1,{spec.channels},{spec.image_size},{spec.image_size}"
    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / "best.json"
        params.write_text(json.dumps(best.parameters), encoding="utf-8")
        again = bench_processes(params, spec.hw_profiles[0], runs, dict(os.environ),
                                extra_args=["--input-shape", shape, "--builder", spec.builder], spacing_s=spacing_s)
    recorded = best.metric("latency_ms")
    latencies = again["latencies_ms"]
    result["best"] = {"trial": best.trial_id, "recorded_ms": recorded, "recorded_rse": best.metric("latency_rse"),
                      "again_ms": latencies, "again_median_ms": statistics.median(latencies),
                      "again_started_s": again["started_s"], "spacing_s": spacing_s,
                      "bracketed": bracketed(recorded, latencies)}
    return result


def bracketed(recorded: Optional[float], latencies: list[float]) -> Optional[bool]:
    """Whether the fresh measurements bracket the recorded latency; None when the experiment
    recorded none (`TrialRecord.metric` gives None for a missing or non-finite value)."""
    return None if recorded is None or not latencies else min(latencies) <= recorded <= max(latencies)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report(result: dict[str, Any]) -> str:
    rows = result["trials"]
    rses = [r["latency_rse"] for r in rows if r["latency_rse"] is not None]
    lines = [f"Experiment {result['experiment_id']}, profile {result['profile']}: {len(rows)} trials with a latency.",
             "", "| trial | latency (ms) | RSE of the median | upper bound (ms) |", "|---|---|---|---|"]
    lines += [f"| {r['trial']} | {r['latency_ms']:.4f} | {_pct(r['latency_rse'])} | "
              f"{'-' if r['latency_ms_upper'] is None else format(r['latency_ms_upper'], '.4f')} |" for r in rows]
    over = result["trials_over_target"]
    lines += ["", f"RSE: median {_pct(statistics.median(rses)) if rses else '-'}, highest {_pct(max(rses)) if rses else '-'}; "
              f"{len(rows) - len(over)}/{len(rows)} at most {_pct(result['rse_target'])} "
              f"({'met' if not over else 'NOT met: ' + ', '.join(over)})"]
    best = result["best"]
    if best is None:
        lines.append("No feasible trial: nothing to measure again.")
    else:
        again = ", ".join(f"{v:.4f}" for v in best["again_ms"])
        recorded = "-" if best["recorded_ms"] is None else f"{best['recorded_ms']:.4f}"
        verdict = {True: "bracketed", False: "NOT bracketed", None: "no recorded latency to bracket"}[best["bracketed"]]
        when = f"{best['spacing_s']:g} s apart" if best.get("spacing_s") else "back to back"
        lines.append(f"Best feasible trial {best['trial']}: recorded {recorded} ms "
                     f"(RSE {_pct(best['recorded_rse'])}); {len(best['again_ms'])} fresh processes ({when}): "
                     f"{again} ms -> {verdict}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_id", help="a finished experiment (NNI's id, e.g. from `make demo`)")
    parser.add_argument("--runs", type=int, default=5, help="separate measurements of the best network (default 5)")
    parser.add_argument("--spacing-s", type=float, default=0.0,
                        help="start one fresh process this many seconds after the last one started (default 0: back to back)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    if not 0 <= args.spacing_s <= 3600:
        parser.error("--spacing-s must be between 0 and 3600")
    result = check(args.experiment_id, args.runs, args.spacing_s)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
