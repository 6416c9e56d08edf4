"""Prototype-driven synthesis benchmark: MobileNetV2 -> compact networks, with and without probing.

    python benchmarks/synthesis.py --out benchmarks/results/synthesis.json
                                   [--data DIR] [--budget 16] [--epochs 4] [--generate 10] [--seed 0]

Data: the embedded scikit-learn digits, upscaled to 32x32 with 3 channels (nothing is
downloaded). `--data DIR` takes a local CIFAR-10 copy instead: the folder of the python
version (data_batch_1..5, test_batch, as extracted from cifar-10-python.tar.gz).

What it does, on one shared recipe (Adam one-cycle, `--epochs`, batch 64, seed):
1. trains the MobileNetV2 1.0 prototype (CIFAR-style, nni_gensynth.models.mobilenetv2),
   probes it, and measures it on ONNX Runtime (host-cpu, 1 thread) and LiteRT (host-tflite);
2. sets the operational requirements from it: accuracy >= prototype - 0.005,
   latency_ms <= prototype / 4, MACs and params <= prototype / 10; U = NetScore;
3. runs GenSynth in-process, learning first from the trained, probed prototype (ask -> measure
   (counts first, then ONNX Runtime, then LiteRT, stopping once a requirement is broken) ->
   train -> probe -> tell) for `--budget` trained candidates, and an ablation with the same
   budget and seed that ignores probe responses (and does not probe); every candidate that
   meets the requirements on counts and ONNX Runtime, so every trained one, is measured on both;
4. measures the prototype and both best networks again side by side (no cache, ONNX Runtime
   and LiteRT);
5. asks the taught generator for `--generate` distinct networks that meet the measured
   requirements, and trains the untrained ones with the same recipe to check accuracy too.
Writes JSON (see `summarise`) and prints a table; a tqdm progress bar goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUILDER = "mobilenetv2"
PROFILES = ("host-cpu", "host-tflite")  # ONNX Runtime (the requirements' latency) and LiteRT, 1 thread
FIGURES = ("accuracy", "params", "macs", "latency_ms", "energy_mj", "energy_source",
           "litert_latency_ms", "litert_energy_mj")
TARGETS = {"accuracy_drop_points": 0.5, "macs": 10.0, "params": 10.0, "latency": 4.0}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--data", default=None, help="local CIFAR-10 folder (default: embedded digits, 32x32x3)")
    parser.add_argument("--budget", type=int, default=16, help="trained candidates per arm (probing, ablation)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs, prototype and candidates alike")
    parser.add_argument("--generate", type=int, default=10, help="networks asked from the taught generator")
    parser.add_argument("--population", type=int, default=4, help="results per generator cycle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator-start", choices=("uniform", "prototype"), default="prototype",
                        help="θ_G at the start: uniform over the derived space, or centred on the prototype "
                             "(GenSynth's prototype argument); both arms learn from the trained, probed prototype first")
    parser.add_argument("--probe-fraction", type=float, default=0.8,
                        help="share of a layer's Taylor importance a width response keeps (library default 0.95)")
    parser.add_argument("--subset", type=int, default=None,
                        help="use only this many training (and a quarter as many test) images: smoke tests")
    parser.add_argument("--no-train-generated", action="store_true",
                        help="do not train the generated networks (their accuracy stays unknown)")
    args = parser.parse_args(argv)
    for name in ("budget", "epochs", "generate", "population"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.population < 2:
        parser.error("--population must be >= 2")
    return args


def load_data(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from nni_gensynth.data import load_dataset

    data = load_dataset(args.data, image_size=32, channels=3)
    if args.subset:
        n_test = max(20, args.subset // 4)
        data = replace(data, x_train=data.x_train[:args.subset], y_train=data.y_train[:args.subset],
                       x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])
    return data


class Lab:
    """Trains, probes and measures networks of the prototype space with one recipe."""

    def __init__(self, data: Any, epochs: int, seed: int, probe_fraction: float = 0.95) -> None:
        from nni_gensynth.synthesis import HostProfiler
        from nni_gensynth.training import TrainConfig

        self.data = data
        self.seed = seed
        self.probe_fraction = probe_fraction
        self.config = TrainConfig(epochs=epochs, seed=seed)
        self.profiler = HostProfiler(BUILDER, data.input_shape, data.num_classes, profiles=PROFILES)

    def train(self, parameters: dict, probe: bool) -> tuple[Any, dict]:
        from nni_gensynth.engine.objective import netscore
        from nni_gensynth.probing import probe_responses
        from nni_gensynth.training import seed_everything, train

        seed_everything(self.seed)
        model = self.profiler.build(parameters).train()
        started = time.perf_counter()
        accuracy = train(model, self.data, self.config, progress=False).accuracy
        result: dict[str, Any] = {"accuracy": accuracy, "train_seconds": round(time.perf_counter() - started, 2)}
        if probe:
            result["responses"] = probe_responses(model, self.data.x_test, self.data.y_test, seed=self.seed,
                                                  fraction=self.probe_fraction)
        model.eval()
        result.update(self.profiler.describe(parameters, model))
        if accuracy > 0 and result.get("macs"):
            result["netscore"] = netscore(accuracy, result["params"], result["macs"])
        return model, result


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


def run_arm(name: str, probing: bool, lab: Lab, space: Any, requirements: Any, proto_params: dict,
            proto_result: dict, args: argparse.Namespace, bar: Any) -> Any:
    from nni_gensynth.engine import GenSynth, Objective
    from nni_gensynth.synthesis import HostProfiler

    screen = HostProfiler(BUILDER, lab.profiler.input_shape, lab.data.num_classes, profiles=PROFILES,
                          limits=requirements)
    centre = proto_params if args.generator_start == "prototype" else None
    engine = GenSynth(space, Objective("netscore"), requirements, profiler=screen, prototype=centre,
                      population_size=args.population, seed=args.seed, max_profiler_calls=40,
                      use_responses=probing)
    # both arms start from the trained prototype's result (the ablation ignores its responses)
    engine.tell(space.from_parameters(proto_params), proto_result)
    for k in range(1, args.budget + 1):
        arch = engine.ask()
        model, result = lab.train(space.to_parameters(arch), probe=probing)
        engine.tell(arch, result)
        log(f"{name} {k}/{args.budget}: acc {result['accuracy']:.4f} params {result['params']:,} "
            f"macs {result['macs']:,} latency {result.get('latency_ms') or float('nan'):.4f} ms "
            f"feasible {engine.requirements.is_met(result)} ({result['train_seconds']} s train) "
            f"{model.network_key}", bar)
        bar.set_postfix(arm=name, best=f"{engine.best_u():.2f}" if engine.best_u() is not None else "n/a",
                        refresh=False)
        bar.update(1)
    return engine


def log(message: str, bar: Any) -> None:
    bar.write(f"[synthesis] {message}", file=sys.stderr)


def best_of(engine: Any) -> Optional[dict]:
    best = engine.best(1)
    if not best:
        return None
    record = best[0]
    return dict(record.metrics, parameters=engine.space.to_parameters(record.arch), netscore_u=record.score)


def side_by_side(lab: Lab, networks: dict[str, dict]) -> dict[str, dict]:
    """Fresh measurements (no cache), ONNX Runtime then LiteRT, of every network, interleaved."""
    out: dict[str, dict] = {name: {} for name in networks}
    models = {name: lab.profiler.build(p) for name, p in networks.items()}
    for i, profile in enumerate(lab.profiler.profiles):
        for name, params in networks.items():
            measured = lab.profiler.measure(models[name], params, profile, prefix=i > 0, use_cache=False)
            out[name].update(measured)
    return out


def generate(engine: Any, lab: Lab, requirements: Any, args: argparse.Namespace, bar: Any) -> dict:
    # distinct parameter dicts can build the same network (a skipped block's settings): ask for
    # more and keep the first `--generate` distinct networks
    archs = engine.generate(2 * args.generate)
    networks: dict[str, dict] = {}
    for arch in archs:
        params = engine.space.to_parameters(arch)
        key = lab.profiler.build(params).network_key
        if key in networks or len(networks) >= args.generate:
            continue
        known = dict(engine.records[arch].metrics) if arch in engine.records else {}
        known.update(engine.measurements.get(arch, {}))
        entry = {"arch": key, "parameters": params, "trained": "accuracy" in known,
                 **{k: known.get(k) for k in FIGURES if k in known}}
        entry["meets_measured_requirements"] = requirements.is_met(known, only_known=True) is True
        if not args.no_train_generated and not entry["trained"]:
            _, result = lab.train(params, probe=False)
            known.update(result)
            entry.update({"trained": True, **{k: result.get(k) for k in FIGURES}})
        entry["meets_all_requirements"] = requirements.is_met(known) is True if entry["trained"] else None
        networks[key] = entry
        bar.update(1)
    listed = list(networks.values())
    return {
        "asked": args.generate,
        "returned": len(archs),
        "distinct_networks": len(listed),
        "distinct_meeting_measured_requirements": sum(e["meets_measured_requirements"] for e in listed),
        "distinct_meeting_all_requirements_after_training": sum(bool(e["meets_all_requirements"]) for e in listed),
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
        }
    return result


CANDIDATE_FIGURES = ("accuracy", "params", "macs", "latency_ms", "litert_latency_ms", "energy_mj",
                     "litert_energy_mj", "energy_source")


def blocks_removed(parameters: Optional[dict]) -> Optional[int]:
    """How many removable blocks a parameter dict skips."""
    if not parameters:
        return None
    return sum(1 for k, v in parameters.items() if k.endswith("_block") and v == "skip")


def arm_summary(engine: Any) -> dict:
    trained = [r for r in engine.records.values() if r.score is not None]
    candidates = [dict({k: r.metrics.get(k) for k in CANDIDATE_FIGURES}, feasible=r.feasible,
                       blocks_removed=blocks_removed(engine.space.to_parameters(r.arch))) for r in trained]
    responses = [r.responses for r in trained if r.responses] if engine.use_responses else []
    block_targets = [v.get("target") for rs in responses for k, v in rs.items() if k.endswith("_block")]
    return {"trained": len(trained), "feasible": sum(1 for r in trained if r.feasible),
            "probed": len(responses),
            "block_responses": {"skip": block_targets.count("skip"), "keep": block_targets.count("keep")},
            "measured_on_both_backends": sum(1 for c in candidates
                                             if c["latency_ms"] is not None and c["litert_latency_ms"] is not None),
            "candidates": candidates,
            "best_netscore": engine.best_u(), "profiler_calls": engine.profiler_calls,
            "cycles": [c.as_dict() for c in engine.cycles]}


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    import logging

    from tqdm import tqdm

    from nni_gensynth.engine import Requirements, SearchSpace
    from nni_gensynth.models.mobilenetv2 import prototype_parameters, search_space

    logging.getLogger("nni_gensynth.engine").setLevel(logging.WARNING)
    started = time.perf_counter()
    data = load_data(args)
    lab = Lab(data, args.epochs, args.seed, args.probe_fraction)
    space = SearchSpace(search_space())
    proto_params = prototype_parameters()
    total = 1 + 2 * args.budget + args.generate
    with tqdm(total=total, desc="synthesis", unit="net", file=sys.stderr, ascii=True, mininterval=0) as bar:
        bar.set_postfix(step="prototype", refresh=True)
        _, proto_result = lab.train(proto_params, probe=True)
        bar.update(1)
        log(f"prototype: acc {proto_result['accuracy']:.4f} latency {proto_result['latency_ms']:.4f} ms "
            f"({proto_result['train_seconds']} s train); responses {proto_result['responses']}", bar)
        requirements = Requirements({
            "accuracy": {"min": round(proto_result["accuracy"] - 0.005, 6)},
            "latency_ms": {"max": proto_result["latency_ms"] / 4},
            "macs": {"max": proto_result["macs"] / 10},
            "params": {"max": proto_result["params"] / 10},
        })
        probing = run_arm("probing", True, lab, space, requirements, proto_params, proto_result, args, bar)
        ablation = run_arm("ablation", False, lab, space, requirements, proto_params, proto_result, args, bar)
        best, ablation_best = best_of(probing), best_of(ablation)
        bar.set_postfix(step="generate", refresh=True)
        generated = generate(probing, lab, requirements, args, bar)
    # side by side: prototype and both bests, fresh measurements with the same profiles and policy
    networks = {"prototype": proto_params}
    if best is not None:
        networks["best"] = best["parameters"]
    if ablation_best is not None:
        networks["ablation"] = ablation_best["parameters"]
    fresh = side_by_side(lab, networks)
    prototype = dict(proto_result, search_time_latency_ms=proto_result["latency_ms"], **fresh["prototype"])
    if best is not None:
        best = dict(best, search_time_latency_ms=best.get("latency_ms"), **fresh["best"])
    if ablation_best is not None:
        ablation_best = dict(ablation_best, search_time_latency_ms=ablation_best.get("latency_ms"),
                             **fresh["ablation"])
    settings = {"data": args.data or "digits 32x32x3 (embedded)", "budget": args.budget, "epochs": args.epochs,
                "population": args.population, "seed": args.seed, "generator_start": args.generator_start, "probe_fraction": args.probe_fraction, "subset": args.subset,
                "profiles": [p.name for p in lab.profiler.profiles], "command": " ".join(["python"] + sys.argv)}
    summary = summarise(prototype, best, ablation_best, generated, requirements, settings,
                        {"probing": arm_summary(probing), "ablation": arm_summary(ablation)},
                        time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    print(format_table(summary))
    return 0


def format_table(summary: dict) -> str:
    rows = [("prototype", summary["prototype"]), ("best (probing)", summary["best"]),
            ("best (ablation)", summary["ablation"] if summary["ablation"].get("accuracy") is not None else None)]
    lines = ["| network | accuracy | params | MACs | ORT latency ms | LiteRT latency ms | energy mJ |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        if r is None:
            lines.append(f"| {name} | none feasible | | | | | |")
            continue
        lines.append(f"| {name} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs']:,} | {r['latency_ms']:.4f} | "
                     f"{(r.get('litert_latency_ms') or math.nan):.4f} | {r['energy_mj']:.4f} ({r['energy_source']}) |")
    if summary.get("targets"):
        lines.append(f"ratios {summary['ratios']}, accuracy drop {summary['accuracy_drop_points']} points, "
                     f"generated distinct feasible {summary['generated_distinct_feasible']}")
        lines.append("targets: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in summary["targets"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
