"""Int8 benchmark: float32 vs static int8 on ONNX Runtime and LiteRT on this host, the accuracy an
int8 model keeps on digits, and a search on an int8 latency requirement against the same search on
float32 latency.

    python benchmarks/quantization.py --out benchmarks/results/quantization.json
                                      [--epochs 3] [--budget 8] [--seed 0] [--rounds 2]

1. Networks: the three reference convnets of benchmarks/measure.py, the synthesis benchmark's
   MobileNetV2 prototype and a compact network of its space (the synthesis benchmark's best, read
   from benchmarks/results/synthesis.json), all at 32x32x3, trained on digits (upscaled; the
   synthesis recipe, with `--epochs`). Each one is exported as float32 and as static int8 (hardware.quantize:
   litert-torch PT2E for LiteRT, quantize_static QDQ for ONNX Runtime, calibrated on 256 training
   images) and measured with the shipped profiles host-cpu (ONNX Runtime) and host-tflite (LiteRT,
   XNNPACK), and once more on LiteRT with no delegate; float32 and int8 alternate, `--rounds`
   times, without the cache, and each cell is the median of the rounds. The int8 files are run over
   the validation and test splits (evaluator.int8) for their accuracy.
2. Search: GenSynth on the macro space (digits at 16x16x1, the demo's setting), `--budget` trials
   per arm, one LiteRT profile measuring both precisions (host-tflite's settings with shorter
   timing). Arm "float32": `latency_ms <= B`; arm "int8": `int8_latency_ms <= B`, the same B: the
   lower quartile of the float32 latency of 8 seeded random networks of the space (a budget that
   binds). Each arm's best feasible
   network is then measured again, both precisions, on both shipped profiles, without the cache.

Writes the JSON and a Markdown table next to it (same stem, .md), and prints the table. The load
average at the start and at the end is recorded: on a shared machine figures move with it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.host import host_facts  # noqa: E402

INPUT_SHAPE = (1, 3, 32, 32)
BACKENDS = {"ort": "host-cpu", "litert": "host-tflite"}
SYNTHESIS_RESULTS = REPO / "benchmarks" / "results" / "synthesis.json"
# a compact network of the synthesis space, used when the synthesis benchmark has not been run
FALLBACK_COMPACT = {"stem_width": 16, "s1_width": 8, "s2_width": 16, "s3_width": 16, "s4_width": 32, "s5_width": 40,
                    "s6_width": 64, "s7_width": 120, "head_width": 320, **{f"b{j}_kernel": 3 for j in range(1, 18)},
                    **{f"b{j}_expansion": 4 for j in range(2, 18)},
                    **{f"b{j}_block": "skip" for j in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)}}
SEARCH_PROFILE_TIMING = {"warmup": {"min_time_s": 0.2, "min_runs": 10},
                         "repeat": {"min_time_s": 0.6, "min_runs": 30, "max_runs": 20000, "target_rse": 0.02,
                                    "max_time_s": 1.8}}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write (and .md next to it)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the part-1 networks")
    parser.add_argument("--budget", type=int, default=8, help="trained networks per search arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="measurements per cell (alternating fp32 / int8)")
    parser.add_argument("--compact", type=Path, default=None,
                        help="the compact network: a `gensynth report` summary.json (its best feasible trial) or a "
                             "JSON file of parameters (default: benchmarks/results/synthesis.json's best)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache folder (default: a new empty one, so no figure comes from an earlier run)")
    args = parser.parse_args(argv)
    for name in ("epochs", "budget", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def log(message: str) -> None:
    print(f"[quantization] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- part 1: networks ------------------------------------------------------------------------------


def compact_parameters(path: Optional[Path] = None) -> tuple[dict, str]:
    """The compact network of the MobileNetV2 space: the best feasible one of a `gensynth report`
    summary.json, or the parameters in a JSON file (`--compact`); else the synthesis benchmark's
    best; else a fixed compact one of the same space."""
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--compact {path}: not a readable JSON file ({exc})") from None
        if isinstance(data, dict) and "best_feasible" in data:  # a report's summary.json
            if not data["best_feasible"]:
                raise SystemExit(f"--compact {path}: the experiment has no feasible network")
            best = data["best_feasible"][0]
            return dict(best["parameters"]), f"{path.name}: best feasible trial {best['trial_id']}"
        if not isinstance(data, dict):
            raise SystemExit(f"--compact {path}: expected a JSON object of parameters")
        return dict(data), str(path)
    try:
        return dict(json.loads(SYNTHESIS_RESULTS.read_text())["best"]["parameters"]), str(
            SYNTHESIS_RESULTS.relative_to(REPO))
    except (OSError, KeyError, TypeError, ValueError):
        return dict(FALLBACK_COMPACT), "fixed fallback (no synthesis results)"


def networks(compact_path: Optional[Path] = None) -> dict[str, tuple[Callable[[], Any], str]]:
    """name -> (a builder of the untrained module, what it is)."""
    from benchmarks.measure import reference_networks
    from nni_gensynth.models import build_model, mobilenetv2

    compact, source = compact_parameters(compact_path)

    def mbv2(parameters: dict) -> Callable[[], Any]:
        return lambda: build_model(parameters, num_classes=10, in_channels=3, builder="mobilenetv2")

    out: dict[str, tuple[Callable[[], Any], str]] = {
        name: ((lambda n=name: reference_networks()[n]), "benchmarks/measure.py reference convnet")
        for name in ("small", "medium", "large")}
    out["prototype"] = (mbv2(mobilenetv2.prototype_parameters()), "MobileNetV2 prototype (synthesis benchmark)")
    out["compact"] = (mbv2(compact), f"compact MobileNetV2-space network ({source})")
    return out


def measured_pair(model: Any, profile: Any, calibration: Any, rounds: int) -> dict[str, Any]:
    """fp32 and int8 latency of `model` on `profile`, alternating, no cache; medians of rounds."""
    from nni_gensynth.hardware import measure

    runs: dict[str, list] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for precision in ("fp32", "int8"):
            runs[precision].append(measure(model, profile, input_shape=INPUT_SHAPE, precision=precision,
                                           calibration=calibration if precision == "int8" else None,
                                           use_cache=False))
    out: dict[str, Any] = {}
    for precision, measurements in runs.items():
        out[f"{precision}_ms"] = statistics.median(m.median_ms for m in measurements)
        out[f"{precision}_rounds_ms"] = [round(m.median_ms, 5) for m in measurements]
        out[f"{precision}_delegate"] = measurements[-1].metrics().get("delegate")
        out[f"{precision}_warnings"] = sorted({w for m in measurements for w in m.warnings})
    out["int8_speedup"] = out["fp32_ms"] / out["int8_ms"]
    out["runtime"] = runs["fp32"][-1].spec.runtime
    return out


def bench_network(name: str, build: Callable[[], Any], what: str, evaluator: Any, profiles: dict,
                  rounds: int) -> dict[str, Any]:
    """Train one network, then its float32 and int8 latency per backend and its int8 accuracy."""
    from nni_gensynth.counting import count
    from nni_gensynth.evaluator.int8 import file_accuracy
    from nni_gensynth.hardware.export import export_model
    from nni_gensynth.hardware.kernels import kernel_report
    from nni_gensynth.training import seed_everything

    seed_everything(evaluator.spec.seed)
    model = build().eval()
    counts = count(model, INPUT_SHAPE)
    started = time.perf_counter()
    trained = evaluator.train(model, {}, progress=False)
    model.eval()
    log(f"{name}: trained in {time.perf_counter() - started:.0f} s, accuracy {trained.accuracy:.4f}")
    data, calibration = evaluator.data, evaluator.calibration()
    row: dict[str, Any] = {"network": name, "what": what, **counts, "accuracy": trained.accuracy,
                           "test_accuracy": trained.test_accuracy}
    for key, profile in profiles.items():
        started = time.perf_counter()
        path = export_model(model, profile.backend, INPUT_SHAPE, precision="int8", calibration=calibration)
        report = kernel_report(path)
        row[f"{key}_int8_export_s"] = round(time.perf_counter() - started, 1)
        row[f"{key}_int8_compute_layers"] = len(report.compute)
        row[f"{key}_int8_float_ops"] = [k.describe() for k in report.float_ops]
        if key != "litert_nodelegate":
            row[f"{key}_int8_accuracy"] = file_accuracy(path, data.x_val, data.y_val, delegate=profile.delegate).value
            row[f"{key}_test_int8_accuracy"] = file_accuracy(path, data.x_test, data.y_test,
                                                             delegate=profile.delegate).value
        pair = measured_pair(model, profile, calibration, rounds if key != "litert_nodelegate" else 1)
        row.update({f"{key}_{k}": v for k, v in pair.items()})
        log(f"{name} on {key}: fp32 {pair['fp32_ms']:.4f} ms, int8 {pair['int8_ms']:.4f} ms "
            f"(x{pair['int8_speedup']:.2f})")
    return row


# -- part 2: search --------------------------------------------------------------------------------


def search_profile(folder: Path) -> Path:
    """host-tflite's settings with shorter timing, measuring float32 and int8 (a search profile)."""
    import yaml

    from nni_gensynth.hardware.profiles import find_profile

    data = yaml.safe_load(find_profile("host-tflite").read_text(encoding="utf-8"))
    data.update(SEARCH_PROFILE_TIMING, name="search-tflite", precision="both", input_shape=[1, 1, 16, 16],
                description="host-tflite with short timing, float32 and int8 (benchmarks/quantization.py)")
    path = folder / "search-tflite.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def latency_budget(profile: Path, space: dict, seed: int, count: int = 8) -> tuple[float, list[float]]:
    """The lower quartile of the float32 latency of `count` seeded random networks of the space
    (and the latencies)."""
    import numpy as np

    from nni_gensynth.engine import Generator, SearchSpace
    from nni_gensynth.evaluator import EvaluationSpec, Evaluator

    evaluator = Evaluator(EvaluationSpec(hw_profiles=(str(profile),), precision="fp32"))
    search_space = SearchSpace(space)
    generator, rng = Generator(search_space), np.random.default_rng(seed)
    latencies = [evaluator(search_space.to_parameters(generator.sample(rng)))["latency_ms"] for _ in range(count)]
    return statistics.quantiles(latencies, n=4)[0], [round(x, 5) for x in latencies]


def run_arm(metric: str, budget_ms: float, profile: Path, space: dict, args: argparse.Namespace) -> dict[str, Any]:
    """One GenSynth search with `metric <= budget_ms`, trials evaluated in this process."""
    from nni_gensynth import GenSynthTuner
    from nni_gensynth.evaluator import EvaluationSpec, Evaluator

    spec = EvaluationSpec(hw_profiles=(str(profile),), precision="both", seed=args.seed)
    tuner = GenSynthTuner(objective="accuracy", constraints={metric: {"max": budget_ms}}, hw_profile=str(profile),
                          evaluation=spec.as_dict(), seed=args.seed, population_size=4, max_profiler_calls=3)
    tuner.update_search_space(space)
    evaluator = Evaluator(spec.replace(requirements=tuner.requirements.to_config()))
    trials = []
    started = time.perf_counter()
    for k in range(args.budget):
        parameters = tuner.generate_parameters(k)
        metrics = evaluator.evaluate(parameters, progress=False)
        tuner.receive_trial_result(k, parameters, metrics)
        tuner.trial_end(k, True)
        trials.append({key: metrics.get(key) for key in ("network", "accuracy", "int8_accuracy", "latency_ms",
                                                          "int8_latency_ms", "feasible", "params", "macs")})
        log(f"arm {metric}: {k + 1}/{args.budget} {metrics.get('network')} acc {metrics.get('accuracy')} "
            f"fp32 {metrics.get('latency_ms')} ms int8 {metrics.get('int8_latency_ms')} ms feasible "
            f"{metrics.get('feasible')}")
    best = tuner.engine.best(1)
    picked = None
    if best:
        record = best[0]
        picked = {"parameters": tuner.engine.space.to_parameters(record.arch),
                  **{k: record.metrics.get(k) for k in ("network", "accuracy", "test_accuracy", "int8_accuracy",
                                                        "test_int8_accuracy", "latency_ms", "int8_latency_ms",
                                                        "params", "macs")}}
    return {"metric": metric, "budget_ms": budget_ms, "trials": trials, "profiler_calls": tuner.engine.profiler_calls,
            "feasible_trials": sum(1 for t in trials if t["feasible"]), "best": picked,
            "seconds": round(time.perf_counter() - started, 1)}


def remeasure(picks: dict[str, dict], rounds: int) -> dict[str, dict]:
    """Each arm's pick on both shipped profiles, float32 and int8, no cache (16x16x1)."""
    from nni_gensynth.evaluator import EvaluationSpec, Evaluator

    out: dict[str, dict] = {}
    for arm, pick in picks.items():
        if pick is None:
            continue
        row: dict[str, Any] = {}
        evaluator = Evaluator(EvaluationSpec(hw_profiles=tuple(BACKENDS.values()), precision="both"))
        model = evaluator.build(pick["parameters"])
        for _ in range(rounds):
            for i in range(len(evaluator.profiles)):
                for key, value in evaluator.measure_on(i, pick["parameters"], model, use_cache=False).items():
                    if key.endswith("latency_ms"):
                        row.setdefault(key, []).append(value)
        out[arm] = {key: statistics.median(values) for key, values in row.items()}
    return out


# -- report -----------------------------------------------------------------------------------------


def _ms(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _cell(text: str) -> str:
    """Text for a Markdown table cell (an architecture string is full of '|')."""
    return f"`{text}`".replace("|", "\\|")


def markdown(result: dict) -> str:
    """The Markdown tables of a result, then where int8 was slower, the load and the command."""
    lines = ["| network | params | MACs | ORT fp32 ms | ORT int8 ms | ORT int8 speed-up | LiteRT fp32 ms | "
             "LiteRT int8 ms | LiteRT int8 speed-up | LiteRT no delegate fp32 / int8 ms | float acc. (test) | "
             "ORT int8 acc. (test) | LiteRT int8 acc. (test) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["networks"]:
        def speed(key: str) -> str:
            value = row[f"{key}_int8_speedup"]
            return f"{value:.2f}x" + (" (int8 slower)" if value < 1 else "")

        lines.append(
            f"| {row['network']} | {row['params']:,} | {row['macs']:,} | {_ms(row['ort_fp32_ms'])} | "
            f"{_ms(row['ort_int8_ms'])} | {speed('ort')} | {_ms(row['litert_fp32_ms'])} | "
            f"{_ms(row['litert_int8_ms'])} | "
            f"{speed('litert')} | {_ms(row['litert_nodelegate_fp32_ms'])} / {_ms(row['litert_nodelegate_int8_ms'])} | "
            f"{row['accuracy']:.4f} ({row['test_accuracy']:.4f}) | {row['ort_int8_accuracy']:.4f} "
            f"({row['ort_test_int8_accuracy']:.4f}) | {row['litert_int8_accuracy']:.4f} "
            f"({row['litert_test_int8_accuracy']:.4f}) |")
    search = result["search"]
    lines += ["", f"Search on digits 16x16x1, macro space, {search['budget']} trained networks per arm, latency "
                  f"budget B = {search['budget_ms']:.4f} ms on LiteRT (lower quartile of the float32 latency of "
                  f"{len(search['budget_sampled_ms'])} random networks):",
              "", "| arm (requirement) | feasible trials | of them, int8 model over B | pick | accuracy | "
                  "int8 accuracy | LiteRT fp32 ms | LiteRT int8 ms | ORT fp32 ms | ORT int8 ms | "
                  "pick's int8 model within B on LiteRT |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in search["arms"]:
        pick, again = arm["best"], search["remeasured"].get(arm["metric"], {})
        over = sum(1 for t in arm["trials"] if t["feasible"] and (t["int8_latency_ms"] or 0) > search["budget_ms"])
        feasible = f"{arm['feasible_trials']}/{len(arm['trials'])} | {over}"
        if pick is None:
            lines.append(f"| {arm['metric']} <= B | {feasible} | none feasible | | | | | | | |")
            continue
        int8_ms = again.get("litert_int8_latency_ms")
        lines.append(
            f"| {arm['metric']} <= B | {feasible} | {_cell(pick['network'])} | "
            f"{pick['accuracy']:.4f} | {pick['int8_accuracy']:.4f} | {_ms(again.get('litert_latency_ms'))} | "
            f"{_ms(int8_ms)} | {_ms(again.get('latency_ms'))} | {_ms(again.get('int8_latency_ms'))} | "
            f"{'yes' if int8_ms is not None and int8_ms <= search['budget_ms'] else 'no'} |")
    lines += ["", f"int8 slower than float32: {', '.join(result['int8_slower']) or 'nowhere'}. Load average "
                  f"{result['load_average_start']} at the start, {result['load_average_end']} at the end (1, 5, 15 "
                  f"min; {result['host']['cores']} cores); {result['wall_minutes']} minutes. Command: "
                  f"`{result['command']}`."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="gensynth-quantization-"))
    os.environ["GENSYNTH_CACHE_DIR"] = str(cache)
    started, load_start = time.perf_counter(), load_average()
    log(f"load average at start {load_start}; cache {cache}")

    from dataclasses import replace

    from nni_gensynth.evaluator import EvaluationSpec, Evaluator
    from nni_gensynth.hardware.profiles import load_profile

    profiles = {key: load_profile(name) for key, name in BACKENDS.items()}
    profiles["litert_nodelegate"] = replace(profiles["litert"], name="host-tflite (no delegate)", delegate="none")
    evaluator = Evaluator(EvaluationSpec(builder="mobilenetv2", image_size=32, channels=3, hw_profiles=(),
                                         epochs=args.epochs, seed=args.seed))
    rows = [bench_network(name, build, what, evaluator, profiles, args.rounds)
            for name, (build, what) in networks(args.compact).items()]

    space = json.loads((REPO / "search_spaces" / "mobilenet_macro.json").read_text())
    with tempfile.TemporaryDirectory(prefix="gensynth-search-") as folder:
        profile = search_profile(Path(folder))
        budget_ms, sampled = latency_budget(profile, space, args.seed)
        log(f"search budget B = {budget_ms:.4f} ms (lower quartile of {sampled})")
        arms = [run_arm(metric, budget_ms, profile, space, args) for metric in ("latency_ms", "int8_latency_ms")]
    remeasured = remeasure({arm["metric"]: arm["best"] for arm in arms}, args.rounds)

    result = {
        "command": "python benchmarks/quantization.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {"epochs": args.epochs, "budget": args.budget, "seed": args.seed, "rounds": args.rounds,
                     "input_shape": list(INPUT_SHAPE), "data": "digits (embedded), 32x32x3 for part 1, 16x16x1 "
                                                               "for the search", "profiles": BACKENDS},
        "host": host_facts(),
        "networks": rows,
        "search": {"budget": args.budget, "budget_ms": budget_ms, "budget_sampled_ms": sampled, "arms": arms,
                   "remeasured": remeasured},
        "int8_slower": [f"{row['network']} on {key}" for row in rows for key in ("ort", "litert", "litert_nodelegate")
                        if row[f"{key}_int8_speedup"] < 1],
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
    }
    text = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
