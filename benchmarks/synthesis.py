"""Prototype synthesis benchmark: examples/synthesis.yml, with and without probing, through the tuner.

    python benchmarks/synthesis.py --out benchmarks/results/synthesis.json
                                   [--config examples/synthesis.yml] [--seed 0] [--budget N]
                                   [--generate 10] [--epochs N] [--no-train-generated]
                                   [--constraint macs.max="prototype / 30" ...]

What runs is the experiment in `--config`, minus the NNI manager: the same `GenSynthTuner` with the
same classArgs (seed from `--seed`), driven through the NNI Tuner API (update_search_space,
generate_parameters, receive_trial_result, trial_end), and every trial evaluated in this process by
the same `Evaluator` the trial command builds (`python -m nni_gensynth.trial ...` in the YAML), one
trial at a time as `trialConcurrency: 1` runs them. So a figure here is one a user reproduces with
`nnictl create --config examples/synthesis.yml`.

1. The tuner evaluates the prototype (trains, probes, measures it on every profile) and resolves the
   requirements stated relative to it (accuracy >= prototype - 0.005, latency <= prototype / 4,
   MACs and params <= prototype / 10 in the shipped YAML).
2. `--budget` trials (default: the YAML's maxTrialNumber) with probing, then the ablation: the
   same budget and seed, `probing: false` and trials that do not probe.
3. The prototype and both best networks measured again side by side (no cache, every profile).
4. Each arm's taught generator is asked for `--generate` distinct networks; the untrained ones
   are trained with the same recipe to check the accuracy requirement too.

Training is deterministic (same network, recipe, data and seed give the same weights: tests/
test_training.py), so each distinct network is trained once per run and its result shared by both
arms (the ablation gets it without the probe responses); the prototype likewise.
Writes JSON (see `summarise`) and prints a table; a tqdm progress bar goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.host import host_facts  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402

DEFAULT_CONFIG = REPO / "examples" / "synthesis.yml"
FIGURES = ("accuracy", "accuracy_low", "accuracy_high", "accuracy_n", "test_accuracy", "test_accuracy_low",
           "test_accuracy_high", "test_accuracy_n", "params", "macs", "latency_ms", "energy_mj", "energy_source",
           "litert_latency_ms", "litert_energy_mj")
TARGETS = {"accuracy_drop_points": 0.5, "macs": 10.0, "params": 10.0, "latency": 4.0, "generated_accuracy": 8}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the NNI experiment YAML to run")
    parser.add_argument("--seed", type=int, default=0, help="the tuner's seed (classArgs seed)")
    parser.add_argument("--budget", type=int, default=None, help="trials per arm (default: maxTrialNumber)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the trial command's)")
    parser.add_argument("--generate", type=int, default=10, help="networks asked from the taught generator")
    parser.add_argument("--no-train-generated", action="store_true",
                        help="do not train the generated networks (their accuracy stays unknown)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="measurement cache to use (default: a new empty one for this run, so no figure comes "
                             "from an earlier run's measurement)")
    parser.add_argument("--constraint", action="append", default=[], metavar="METRIC.BOUND=VALUE",
                        help='change one requirement of the YAML, e.g. macs.max="prototype / 30" (repeatable)')
    args = parser.parse_args(argv)
    try:
        args.constraint = [parse_constraint(text) for text in args.constraint]
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("budget", "epochs", "generate"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not args.config.is_file():
        parser.error(f"--config {args.config} not found")
    return args


def parse_constraint(text: str) -> tuple[str, str, Any]:
    """'macs.max=prototype / 30' -> ("macs", "max", "prototype / 30"); numbers become floats."""
    name, sep, value = text.partition("=")
    metric, dot, bound = name.strip().rpartition(".")
    if not sep or not dot or bound not in ("min", "max") or not metric:
        raise ValueError(f"--constraint must be METRIC.min=VALUE or METRIC.max=VALUE, got {text!r}")
    value = value.strip().strip("'\"")
    try:
        return metric, bound, float(value)
    except ValueError:
        return metric, bound, value


class Experiment:
    """The YAML's search space, tuner classArgs and trial spec."""

    def __init__(self, path: Path, seed: int, epochs: Optional[int],
                 constraints: Sequence[tuple[str, str, Any]] = ()) -> None:
        import yaml

        from nni_gensynth.evaluator import spec_from_trial_command

        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.config = config
        self.space = json.loads((path.parent / config["searchSpaceFile"]).read_text(encoding="utf-8"))
        self.class_args = dict(config["tuner"]["classArgs"], seed=seed)
        if constraints:
            merged = {m: dict(b) for m, b in (self.class_args.get("constraints") or {}).items()}
            for metric, bound, value in constraints:
                merged.setdefault(metric, {})[bound] = value
            self.class_args["constraints"] = merged
        spec = spec_from_trial_command(config["trialCommand"])
        if spec is None:
            raise ValueError(f"{path}: trialCommand does not run nni_gensynth.trial")
        self.spec = spec.replace(epochs=epochs) if epochs else spec
        self.max_trials = int(config.get("maxTrialNumber") or 20)


@contextmanager
def shared_trainings() -> Iterator[dict]:
    """Within the block, `Evaluator.evaluate` trains each distinct (network, recipe) once and
    hands its result to every later caller, without probe responses when the caller does not
    probe (training is deterministic, so a second training would give the same numbers)."""
    from nni_gensynth.evaluator import Evaluator

    original = Evaluator.evaluate
    memo: dict = {}

    def evaluate(self: Any, parameters: Any, **kwargs: Any) -> dict:
        recipe = self.spec.replace(probe=None, requirements={}).as_dict()
        key = json.dumps([parameters, recipe, self.requirements.to_config(), kwargs.get("stop_when_broken", True)],
                         sort_keys=True, default=str)
        cached = memo.get(key)
        if cached is None or (self.spec.probe is not False and "responses" not in cached and cached.get("trained")):
            cached = memo[key] = original(self, parameters, **kwargs)
        result = dict(cached)
        if self.spec.probe is False:
            result.pop("responses", None)
        return result

    Evaluator.evaluate = evaluate
    try:
        yield memo
    finally:
        Evaluator.evaluate = original


def run_arm(name: str, probing: bool, experiment: Experiment, budget: int, bar: Any) -> tuple[Any, dict]:
    """One experiment's tuner and trials, in this process; returns the tuner, and the held-out
    figures (test split) of every trained network by `parameters_key`: the tuner never keeps
    them (it must not learn from them), the report of the final networks needs them."""
    from nni_gensynth import GenSynthTuner
    from nni_gensynth.evaluator import Evaluator
    from nni_gensynth.tuner import HELD_OUT_PREFIX

    spec = experiment.spec if probing else experiment.spec.replace(probe=False)
    tuner = GenSynthTuner(**dict(experiment.class_args, probing=probing), evaluation=spec.as_dict())
    bar.set_postfix(arm=name, step="prototype", refresh=True)
    tuner.update_search_space(experiment.space)
    bar.update(1)
    proto = tuner.prototype_result or {}
    log(f"{name}: prototype acc {proto.get('accuracy')} latency {proto.get('latency_ms')} ms; "
        f"requirements {tuner.requirements!r}", bar)
    evaluator = Evaluator(spec.replace(requirements=tuner.requirements.to_config()))
    held_out: dict[str, dict] = {}
    for k in range(budget):
        parameters = tuner.generate_parameters(k)
        metrics = evaluator.evaluate(parameters, progress=False)
        held_out[parameters_key(parameters)] = {key: v for key, v in metrics.items() if key.startswith(HELD_OUT_PREFIX)}
        tuner.receive_trial_result(k, parameters, metrics)
        tuner.trial_end(k, True)
        met = tuner.requirements.is_met(metrics)
        log(f"{name} {k + 1}/{budget}: acc {metrics.get('accuracy')} params {metrics['params']:,} "
            f"macs {metrics['macs']:,} latency {metrics.get('latency_ms')} ms feasible {met} "
            f"({metrics['train_seconds']} s train) {metrics.get('network')}", bar)
        best = tuner.engine.best_u()
        bar.set_postfix(arm=name, best="n/a" if best is None else f"{best:.2f}", refresh=False)
        bar.update(1)
    return tuner, held_out


def parameters_key(parameters: dict) -> str:
    return json.dumps(parameters, sort_keys=True, default=str)


def log(message: str, bar: Any) -> None:
    bar.write(f"[synthesis] {message}", file=sys.stderr)


def figures(metrics: dict, extra: Optional[dict] = None) -> dict:
    out = {k: metrics.get(k) for k in FIGURES}
    out.update(extra or {})
    return out


def ratios(prototype: dict, best: dict) -> dict:
    def ratio(key: str) -> Optional[float]:
        a, b = prototype.get(key), best.get(key)
        return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None
    return {"macs": ratio("macs"), "params": ratio("params"), "latency": ratio("latency_ms"),
            "litert_latency": ratio("litert_latency_ms")}


def best_of(engine: Any, held_out: dict[str, dict]) -> Optional[dict]:
    """The arm's best feasible network: what the tuner recorded, plus its held-out figures."""
    best = engine.best(1)
    if not best:
        return None
    record = best[0]
    parameters = engine.space.to_parameters(record.arch)
    return dict(record.metrics, **held_out.get(parameters_key(parameters), {}), parameters=parameters,
                netscore_u=record.score)


def side_by_side(evaluator: Any, networks: dict[str, dict]) -> dict[str, dict]:
    """Fresh measurements (no cache) of every network on every profile, interleaved per profile."""
    out: dict[str, dict] = {name: {} for name in networks}
    models = {name: evaluator.build(p) for name, p in networks.items()}
    for i in range(len(evaluator.profiles)):
        for name, params in networks.items():
            out[name].update(evaluator.measure_on(i, params, models[name], use_cache=False))
    return out


def generate(tuner: Any, evaluator: Any, args: argparse.Namespace, bar: Any) -> dict:
    """The taught generator's networks: distinct ones, each checked against every requirement."""
    engine, requirements = tuner.engine, tuner.requirements
    networks: dict[str, dict] = {}
    archs = engine.generate(args.generate)  # distinct trainings, so distinct networks
    for arch in archs:
        params = engine.space.to_parameters(arch)
        key = evaluator.build(params).network_key
        known = dict(engine.records[arch].metrics) if arch in engine.records else {}
        known.update(engine.measurements.get(arch, {}))
        entry = {"arch": key, "parameters": params, "trained_in_search": "accuracy" in known,
                 **{k: known.get(k) for k in FIGURES if k in known}}
        entry["meets_measured_requirements"] = requirements.is_met(known, only_known=True) is True
        trained = entry["trained_in_search"]
        if not args.no_train_generated and not trained:
            result = evaluator.evaluate(params, progress=False)
            known.update(result)
            entry.update({k: result.get(k) for k in FIGURES})
            trained = True
        entry["trained"] = trained
        entry["meets_all_requirements"] = requirements.is_met(known) is True if trained else None
        networks[key] = entry
        bar.update(1)
    listed = list(networks.values())
    return {
        "asked": args.generate,
        "returned": len(archs),
        "distinct_networks": len(listed),
        "distinct_meeting_measured_requirements": sum(e["meets_measured_requirements"] for e in listed),
        "distinct_meeting_all_requirements_after_training": sum(bool(e["meets_all_requirements"]) for e in listed),
        "distinct_trained_in_search": sum(e["trained_in_search"] for e in listed),
        "networks": listed,
    }


def summarise(prototype: dict, best: Optional[dict], ablation: Optional[dict], generated: dict,
              requirements: Any, settings: dict, arms: dict, seconds: float) -> dict:
    def block(record: Optional[dict]) -> Optional[dict]:
        if record is None:
            return None
        out = figures(record, {"netscore": record.get("netscore"), "parameters": record.get("parameters")})
        out["ratios"] = ratios(prototype, record)
        out["blocks_removed"] = blocks_removed(record.get("parameters"))
        out["accuracy_drop_points"] = round(100 * (prototype["accuracy"] - record["accuracy"]), 3)
        return out

    best_block, ablation_block = block(best), block(ablation)
    for b, record in ((best_block, best), (ablation_block, ablation)):
        if b is not None:
            b["test_split"] = test_split(prototype, record)
    u = lambda r: None if r is None else r.get("netscore_u")  # noqa: E731
    probing_better = (best is not None and (ablation is None or u(best) > u(ablation)))
    result = {
        "settings": settings,
        "requirements": requirements.to_config(),
        "objective": "netscore (accuracy %, params M, MACs G; Wong 2018)",
        "prototype": figures(prototype, {"netscore": prototype.get("netscore")}),
        "best": best_block,
        "ratios": best_block["ratios"] if best_block else None,
        "accuracy_drop_points": best_block["accuracy_drop_points"] if best_block else None,
        "ablation": dict(ablation_block or {"best": None}, probing_better=probing_better),
        "generated_distinct_feasible": generated["distinct_meeting_measured_requirements"],
        "generated_meeting_all": generated["distinct_meeting_all_requirements_after_training"],
        "generated": generated,
        "arms": arms,
        "seconds": round(seconds, 1),
    }
    if best_block:
        r = best_block["ratios"]
        result["targets"] = {
            "accuracy_within_0.5_points": best_block["accuracy_drop_points"] <= TARGETS["accuracy_drop_points"],
            "macs_10x": (r["macs"] or 0) >= TARGETS["macs"],
            "params_10x": (r["params"] or 0) >= TARGETS["params"],
            "latency_4x": (r["latency"] or 0) >= TARGETS["latency"],
            "probing_beats_ablation": probing_better,
            "generated_10_distinct_feasible": generated["distinct_meeting_measured_requirements"] >= 10,
            "generated_8_meet_accuracy": (generated["distinct_meeting_all_requirements_after_training"]
                                          >= TARGETS["generated_accuracy"]),
        }
    return result


def test_split(prototype: dict, best: dict) -> dict:
    """Prototype and best on the test split (never seen by the search), with 95% intervals, and
    whether "within 0.5 points of the prototype" holds at the point estimate only or beyond the
    interval (the lower end of the best's interval within 0.5 points of the prototype's estimate)."""
    p, b = prototype.get("test_accuracy"), best.get("test_accuracy")
    if not isinstance(p, (int, float)) or not isinstance(b, (int, float)):
        return {"available": False}
    margin = TARGETS["accuracy_drop_points"] / 100
    low = best.get("test_accuracy_low")
    return {"available": True, "n": best.get("test_accuracy_n"),
            "prototype": [p, prototype.get("test_accuracy_low"), prototype.get("test_accuracy_high")],
            "best": [b, low, best.get("test_accuracy_high")],
            "change_points": round(100 * (b - p), 3),
            "within_0.5_points_at_point_estimate": b >= p - margin,
            "within_0.5_points_beyond_interval": isinstance(low, (int, float)) and low >= p - margin}


CANDIDATE_FIGURES = ("accuracy", "params", "macs", "latency_ms", "litert_latency_ms", "energy_mj",
                     "litert_energy_mj", "energy_source")


def blocks_removed(parameters: Optional[dict]) -> Optional[int]:
    """How many removable blocks a parameter dict skips."""
    if not parameters:
        return None
    return sum(1 for k, v in parameters.items() if k.endswith("_block") and v == "skip")


def first_feasible(engine: Any) -> Optional[int]:
    """How many trainings the arm made until its first feasible network (the prototype, which the
    tuner evaluated before any trial, not counted); None when none was feasible."""
    trained = [r for r in engine.records.values() if r.score is not None]
    for k, record in enumerate(trained[1:], start=1):
        if record.feasible:
            return k
    return None


def arm_summary(engine: Any, generated: Optional[dict] = None) -> dict:
    trained = [r for r in engine.records.values() if r.score is not None]
    candidates = [dict({k: r.metrics.get(k) for k in CANDIDATE_FIGURES}, feasible=r.feasible,
                       blocks_removed=blocks_removed(engine.space.to_parameters(r.arch))) for r in trained]
    responses = [r.responses for r in trained if r.responses] if engine.use_responses else []
    block_targets = [v.get("target") for rs in responses for k, v in rs.items() if k.endswith("_block")]
    return {"trained": len(trained), "feasible": sum(1 for r in trained if r.feasible),
            "feasible_fraction": round(sum(1 for r in trained[1:] if r.feasible) / max(1, len(trained) - 1), 4),
            "first_feasible_training": first_feasible(engine),
            "generated_meeting_all": None if generated is None else
            generated["distinct_meeting_all_requirements_after_training"],
            "generated_distinct": None if generated is None else generated["distinct_networks"],
            "probed": len(responses),
            "twins_skipped": engine.twins_skipped,  # candidates not trained: they train as one already trained
            "advice_tested": engine.inquisitor.trust.tested,  # trained networks that followed a probe's advice
            "block_responses": {"skip": block_targets.count("skip"), "keep": block_targets.count("keep")},
            "measured_on_both_backends": sum(1 for c in candidates
                                             if c["latency_ms"] is not None and c["litert_latency_ms"] is not None),
            "candidates": candidates,
            "best_netscore": engine.best_u(), "profiler_calls": engine.profiler_calls,
            "cycles": [c.as_dict() for c in engine.cycles]}


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    import tempfile

    from nni_gensynth.hardware.cache import cache_dir

    with tempfile.TemporaryDirectory(prefix="gensynth-synthesis-cache-") as fresh:
        # a new measurement cache, but the usual export cache: an exported file depends only on
        # the network, and converting to .tflite takes seconds per network
        (cache_dir() / "exports").mkdir(parents=True, exist_ok=True)
        Path(fresh, "exports").symlink_to(cache_dir() / "exports", target_is_directory=True)
        previous = os.environ.get("GENSYNTH_CACHE_DIR")
        os.environ["GENSYNTH_CACHE_DIR"] = str(args.cache_dir or fresh)
        try:
            return run(args)
        finally:
            if previous is None:
                os.environ.pop("GENSYNTH_CACHE_DIR", None)
            else:
                os.environ["GENSYNTH_CACHE_DIR"] = previous


def run(args: argparse.Namespace) -> int:
    """The benchmark (see the module doc) with the measurement cache already chosen."""
    from tqdm import tqdm

    from nni_gensynth.evaluator import Evaluator

    logging.getLogger("nni_gensynth.engine").setLevel(logging.WARNING)
    started = time.perf_counter()
    code = provenance()  # before the runs: which code produced this record
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    experiment = Experiment(args.config, args.seed, args.epochs, args.constraint)
    budget = args.budget or experiment.max_trials
    total = 2 * (1 + budget + args.generate)
    with tqdm(total=total, desc="synthesis", unit="net", file=sys.stderr, ascii=True, mininterval=0) as bar, \
            shared_trainings():
        probing, probing_held_out = run_arm("probing", True, experiment, budget, bar)
        ablation, ablation_held_out = run_arm("ablation", False, experiment, budget, bar)
        requirements = probing.requirements
        best, ablation_best = best_of(probing.engine, probing_held_out), best_of(ablation.engine, ablation_held_out)
        bar.set_postfix(step="generate", refresh=True)
        evaluator = Evaluator(experiment.spec.replace(probe=False, requirements=requirements.to_config()))
        generated = generate(probing, evaluator, args, bar)
        generated_ablation = generate(ablation, evaluator, args, bar)
    # side by side: prototype and both bests, fresh measurements with the same profiles and policy
    proto_result = probing.prototype_result
    networks = {"prototype": probing.prototype_parameters}
    if best is not None:
        networks["best"] = best["parameters"]
    if ablation_best is not None:
        networks["ablation"] = ablation_best["parameters"]
    fresh = side_by_side(Evaluator(experiment.spec.replace(requirements={})), networks)
    prototype = dict(proto_result, search_time_latency_ms=proto_result["latency_ms"], **fresh["prototype"])
    if best is not None:
        best = dict(best, search_time_latency_ms=best.get("latency_ms"), **fresh["best"])
    if ablation_best is not None:
        ablation_best = dict(ablation_best, search_time_latency_ms=ablation_best.get("latency_ms"),
                             **fresh["ablation"])
    settings = {"config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
                "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
                "budget": budget, "seed": args.seed, "class_args": dict(experiment.class_args),
                "evaluation": experiment.spec.as_dict(), "command": " ".join(["python"] + sys.argv),
                "host": host_facts(), "provenance": code}
    arms = {"probing": arm_summary(probing.engine, generated), "ablation": arm_summary(ablation.engine, generated_ablation)}
    summary = summarise(prototype, best, ablation_best, generated, requirements, settings, arms,
                        time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    print(format_table(summary))
    return 0


def format_table(summary: dict) -> str:
    rows = [("prototype", summary["prototype"]), ("best (probing)", summary["best"]),
            ("best (ablation)", summary["ablation"] if summary["ablation"].get("accuracy") is not None else None)]
    lines = ["| network | val. accuracy | test accuracy [95% CI] | params | MACs | ORT latency ms | LiteRT latency ms | energy mJ |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        if r is None:
            lines.append(f"| {name} | none feasible | | | | | | |")
            continue
        lines.append(f"| {name} | {r['accuracy']:.4f} | {interval_text(r)} | {int(r['params']):,} | {int(r['macs']):,} | "
                     f"{r['latency_ms']:.4f} | {(r.get('litert_latency_ms') or math.nan):.4f} | "
                     f"{r['energy_mj']:.4f} ({r['energy_source']}) |")
    if summary.get("targets"):
        lines.append(f"ratios {summary['ratios']}, accuracy drop {summary['accuracy_drop_points']} points, "
                     f"generated distinct feasible {summary['generated_distinct_feasible']}, "
                     f"meeting every requirement after training {summary['generated_meeting_all']}")
        lines.append("targets: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in summary["targets"].items()))
    return "\n".join(lines)


def interval_text(r: dict) -> str:
    """"0.9721 [0.950, 0.985]" from a record's test accuracy and its interval."""
    value, low, high = r.get("test_accuracy"), r.get("test_accuracy_low"), r.get("test_accuracy_high")
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]" if isinstance(low, (int, float)) else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
