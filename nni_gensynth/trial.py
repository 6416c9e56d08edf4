"""The trial NNI runs for every candidate: build, count, measure, train, evaluate, report.

    python -m nni_gensynth.trial [--epochs N] [--hw-profile host-cpu] [--constraints JSON]
                                 [--image-size 16] [--seed S] [--parameters JSON] [--data DIR]
                                 [--skip-infeasible] [--builder NAME|module:callable]
                                 [--probe | --no-probe]

Parameters come from `nni.get_next_parameter()`, or from `--parameters` to run outside NNI.
Order of work: build the network, count params and MACs (torch's FlopCounterMode), measure
latency/energy/memory on the hardware profile FIRST (they do not depend on trained weights, so
a network that cannot meet the requirements is known before any training), then train and
evaluate on the held-out split, then report.

Final result (`nni.report_final_result`), a dict:
    default         accuracy if the network is feasible (meets --constraints), else 0.0 —
                    so tuners that only read `default` (TPE, Random, ...) optimise accuracy
                    subject to the constraints;
    accuracy        top-1 accuracy on the held-out split (digits: the fixed stratified 20%,
                    360 images; CIFAR-10: test_batch), fraction 0-1; None only when
                    --skip-infeasible skipped training of a network measured infeasible;
    latency_ms, latency_p90_ms, cv, energy_mj, energy_source, peak_mem_mb, backend, device
                    from nni_gensynth.hardware.measure (None without a hardware profile);
                    with several profiles (--hw-profile host-cpu,host-tflite) the first one's,
                    and the others' prefixed with their backend (litert_latency_ms, ...);
    params, macs    raw counts (MACs = FLOPs / 2, see nni_gensynth.counting);
    netscore        NetScore in dB from accuracy %, params in M and MACs in G;
    feasible        bool: every constraint met by the measured/reported metrics;
    responses       probe responses after training (nni_gensynth.probing), compact JSON text
                    {decision: {"target", "weight"}}, when probing ran (--probe; default on for
                    networks with probe_sites(), i.e. the prototype spaces);
    trained, arch (compact architecture string), network (arch without skipped stages: equal
                    for parameter dicts that build the same network), arch_hash (measurement
                    cache key), lr, train_seconds, measure_seconds.
Per epoch `nni.report_intermediate_result({"default": accuracy, "accuracy", "loss"})`.
Outside NNI the final dict is also printed as JSON on the last line of stdout. An exception
prints its traceback to stderr and exits with status 1, which NNI marks as FAILED.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

# Metrics the trial computes itself (besides the hardware metrics), for checking constraints.
TRAINED_METRICS = ("accuracy", "netscore")
HARDWARE_KEYS = ("latency_ms", "latency_p90_ms", "cv", "energy_mj", "energy_source", "peak_mem_mb",
                 "backend", "device")
NO_PROFILE = "none"


@dataclass
class TrialOptions:
    """Everything besides the parameters that decides what a trial does."""

    epochs: int = 5
    hw_profile: str = "host-cpu"
    constraints: dict[str, Any] = field(default_factory=dict)
    image_size: int = 16
    channels: int = 1
    seed: int = 0
    threads: int = 1
    data: Optional[str] = None
    builder: str = "macro_mobilenet"
    skip_infeasible: bool = False
    use_cache: bool = True
    progress: bool = True
    probe: Optional[bool] = None  # None: probe when the network names probe sites (prototype spaces)
    weights_path: Optional[str] = None  # where the trained state_dict goes (gensynth export reads it)


def json_object(text: str, what: str) -> dict[str, Any]:
    """The JSON object in `text` (a command-line value); ValueError naming `what` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _plain(value: Any) -> Any:
    """JSON-safe scalar: numpy numbers -> Python, NaN/inf -> None."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _log(message: str) -> None:
    print(f"[trial] {message}", file=sys.stderr, flush=True)


def _measure(model: Any, options: TrialOptions, input_shape: tuple[int, ...], arch_hash: str) -> dict[str, Any]:
    """Hardware metrics from nni_gensynth.hardware.measure_profiles, or Nones without a profile."""
    if options.hw_profile.lower() == NO_PROFILE:
        return {key: None for key in HARDWARE_KEYS}
    from .hardware import measure_profiles

    measured = measure_profiles(model, options.hw_profile, input_shape=input_shape, arch_hash=arch_hash,
                                use_cache=options.use_cache)
    metrics = {key: _plain(value) for key, value in measured.items()}
    for key in HARDWARE_KEYS:
        metrics.setdefault(key, None)
    return metrics


def _check_constraint_metrics(names: Sequence[str], metrics: Mapping[str, Any], hw_profile: str) -> None:
    """Every constrained metric must be one the trial reports, else feasibility is meaningless."""
    for name in names:
        if name in TRAINED_METRICS or metrics.get(name) is not None:
            continue
        if name in HARDWARE_KEYS and hw_profile.lower() == NO_PROFILE:
            raise ValueError(f"constraints[{name!r}] needs a hardware measurement, but --hw-profile is 'none'")
        if name in metrics:
            raise ValueError(f"constraints[{name!r}]: hardware profile {hw_profile!r} did not provide {name}")
        raise ValueError(f"constraints[{name!r}]: not a metric the trial reports; constrainable: "
                         f"{sorted(k for k in set(metrics) | set(TRAINED_METRICS) if k not in ('backend', 'device', 'energy_source'))}")


def measurement_hash(parameters: Mapping[str, Any], builder: str, input_shape: Sequence[int],
                     num_classes: int, network_key: Optional[str] = None) -> str:
    """What a hardware measurement depends on: the network (its builder's `network_key` when it
    has one, else the architecture keys without training hyperparameters), the builder, the input
    shape and the class count. The trial and `TrialProfiler` share it, so a network the tuner
    measured before proposing it is a cache hit when its trial runs."""
    from .engine.fingerprint import architecture_hash
    from .training import HYPERPARAMETER_KEYS

    network: Any = network_key
    if network is None:
        network = {k: v for k, v in parameters.items() if k not in HYPERPARAMETER_KEYS}
    return architecture_hash({"network": network, "builder": builder,
                              "input_shape": [int(d) for d in input_shape], "num_classes": int(num_classes)})


class TrialProfiler:
    """`fn(parameters) -> {metric: float}`: the hardware metrics (plus params and MACs) of the
    network the trial builds, at the trial's input shape, measured before any training.

    For the tuner's `profiler` classArg, so that GenSynth judges 1_r on the very measurement the
    trial reports (same model, same input, same cache entry). `measure_like_trial` is an instance
    with the trial's defaults (host-cpu, 1x16x16 digits); build another for other settings.
    """

    def __init__(self, hw_profile: str = TrialOptions.hw_profile, image_size: int = TrialOptions.image_size,
                 channels: int = TrialOptions.channels, num_classes: int = 10,
                 builder: str = TrialOptions.builder, use_cache: bool = True) -> None:
        if not isinstance(image_size, int) or image_size < 1 or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"TrialProfiler needs positive int image_size and channels, got {image_size!r}, {channels!r}")
        self.hw_profile = hw_profile
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.builder = builder
        self.use_cache = use_cache

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.channels, self.image_size, self.image_size)

    def __call__(self, parameters: Mapping[str, Any]) -> dict[str, float]:
        from .counting import count
        from .hardware import measure_profiles
        from .models import build_model

        model = build_model(parameters, num_classes=self.num_classes, in_channels=self.channels,
                            builder=self.builder).eval()
        arch_hash = measurement_hash(parameters, self.builder, self.input_shape, self.num_classes,
                                     getattr(model, "network_key", None))
        metrics = measure_profiles(model, self.hw_profile, input_shape=self.input_shape, arch_hash=arch_hash,
                                   use_cache=self.use_cache)
        metrics.update(count(model, self.input_shape))
        out = {}
        for key, value in metrics.items():
            value = _plain(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
        return out


measure_like_trial = TrialProfiler()


def run_trial(parameters: Mapping[str, Any], options: TrialOptions = TrialOptions(),
              reporter: Any = None) -> dict[str, Any]:
    """Run one trial in this process and return the final metrics dict (see module doc).

    `reporter`, if given, has `report_intermediate_result(dict)` (the `nni` module inside NNI).
    """
    # torch-heavy imports here, so that `--help` and the profiler's module import stay light
    from .counting import count
    from .data import load_dataset
    from .engine.objective import Requirements, netscore
    from .models import build_model, resolve_builder
    from .training import TrainConfig, seed_everything, train

    if not isinstance(parameters, Mapping) or not parameters:
        raise ValueError("parameters must be a non-empty mapping (pass --parameters or run under NNI)")
    requirements = Requirements(options.constraints)
    config = TrainConfig(epochs=options.epochs, seed=options.seed, threads=options.threads).with_parameters(parameters)
    resolve_builder(options.builder)  # fail fast on a bad builder name

    seed_everything(options.seed, options.threads)
    data = load_dataset(options.data, image_size=options.image_size, channels=options.channels)
    model = build_model(parameters, num_classes=data.num_classes, in_channels=data.x_train.shape[1],
                        builder=options.builder)
    input_shape = data.input_shape
    counts = count(model, input_shape)
    spec = getattr(model, "spec", None)
    arch = spec.arch_string() if hasattr(spec, "arch_string") else None
    arch_hash = measurement_hash(parameters, options.builder, input_shape, data.num_classes,
                                 getattr(model, "network_key", None))
    _log(f"arch={arch} params={counts['params']} macs={counts['macs']} hash={arch_hash}")

    started = time.perf_counter()
    model.eval()
    hardware = _measure(model, options, input_shape, arch_hash)
    measure_seconds = time.perf_counter() - started
    _log(f"measured on {options.hw_profile}: latency_ms={hardware['latency_ms']} "
         f"energy_mj={hardware['energy_mj']} ({measure_seconds:.1f} s)")

    metrics: dict[str, Any] = {**hardware, **counts}
    _check_constraint_metrics(requirements.metrics, metrics, options.hw_profile)
    feasible_before_training = requirements.is_met(metrics, only_known=True)

    accuracy: Optional[float] = None
    train_seconds = 0.0
    if options.skip_infeasible and feasible_before_training is False:
        _log(f"infeasible before training ({requirements!r}); training skipped")
    else:
        def on_epoch(epoch: int, record: dict[str, float]) -> None:
            if reporter is not None:
                reporter.report_intermediate_result({"default": record["accuracy"], **record})

        # Re-seed so the batch order and everything after the measurement is independent of it.
        seed_everything(options.seed, options.threads)
        started = time.perf_counter()
        result = train(model, data, config, on_epoch=on_epoch, progress=options.progress)
        train_seconds = time.perf_counter() - started
        accuracy = result.accuracy
        if options.weights_path:
            import torch

            torch.save(model.state_dict(), options.weights_path)
        if options.probe is not False and getattr(model, "probe_sites", None) is not None:
            from .probing import probe_responses

            started = time.perf_counter()
            metrics["responses"] = probe_responses(model, data.x_test, data.y_test, seed=options.seed)
            _log(f"probe responses ({time.perf_counter() - started:.1f} s): {metrics['responses']}")
        elif options.probe:
            raise ValueError(f"--probe: builder {options.builder!r} builds a network without probe_sites()")

    metrics["accuracy"] = accuracy
    metrics["netscore"] = (netscore(accuracy, counts["params"], counts["macs"])
                           if accuracy and counts["macs"] > 0 else None)
    feasible = accuracy is not None and requirements.is_met(metrics) is True
    metrics.update({
        "default": accuracy if feasible else 0.0,
        "feasible": bool(feasible),
        "trained": accuracy is not None,
        "arch": arch,
        "network": getattr(model, "network_key", None),
        "arch_hash": arch_hash,
        "lr": config.lr,
        "measure_seconds": round(measure_seconds, 3),
        "train_seconds": round(train_seconds, 3),
    })
    return {key: _plain(value) for key, value in metrics.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nni_gensynth.trial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parameters", help="parameter dict as JSON (instead of nni.get_next_parameter())")
    parser.add_argument("--epochs", type=int, default=TrialOptions.epochs)
    parser.add_argument("--hw-profile", default=TrialOptions.hw_profile,
                        help="hardware profile name or path; 'none' skips measurement")
    parser.add_argument("--constraints", default="{}", help='JSON, e.g. \'{"latency_ms": {"max": 1.0}}\'')
    parser.add_argument("--image-size", type=int, default=TrialOptions.image_size)
    parser.add_argument("--channels", type=int, default=TrialOptions.channels)
    parser.add_argument("--seed", type=int, default=TrialOptions.seed)
    parser.add_argument("--threads", type=int, default=TrialOptions.threads)
    parser.add_argument("--data", default=None, help="local CIFAR-10 folder (default: embedded digits)")
    parser.add_argument("--builder", default=TrialOptions.builder,
                        help="registered builder name or 'package.module:callable'")
    parser.add_argument("--skip-infeasible", action="store_true",
                        help="do not train networks whose measured metrics already break the constraints")
    parser.add_argument("--no-cache", action="store_true", help="re-measure even if a cached measurement exists")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--save-weights", metavar="PATH", default=None,
                        help="save the trained state_dict there (under NNI, default: "
                             "$NNI_OUTPUT_DIR/model.pt, which `gensynth export` loads)")
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="report probe responses (JSON string under 'responses') after training; "
                             "default: when the network names probe sites (prototype spaces)")
    return parser


def options_from_args(args: argparse.Namespace) -> TrialOptions:
    return TrialOptions(epochs=args.epochs, hw_profile=args.hw_profile,
                        constraints=json_object(args.constraints, "--constraints"),
                        image_size=args.image_size, channels=args.channels, seed=args.seed,
                        threads=args.threads, data=args.data, builder=args.builder,
                        skip_infeasible=args.skip_infeasible, use_cache=not args.no_cache,
                        progress=not args.no_progress, probe=args.probe,
                        weights_path=args.save_weights or _nni_weights_path())


def _nni_weights_path() -> Optional[str]:
    """$NNI_OUTPUT_DIR/model.pt inside an NNI trial (the trial's own folder), else None."""
    folder = os.environ.get("NNI_OUTPUT_DIR")
    return os.path.join(folder, "model.pt") if folder else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import nni

        options = options_from_args(args)
        if args.parameters is not None:
            parameters = json_object(args.parameters, "--parameters")
        else:
            parameters = nni.get_next_parameter()
            if not parameters:
                raise ValueError("no parameters: nni.get_next_parameter() returned none "
                                 "(outside NNI pass --parameters JSON)")
        _log(f"parameters={json.dumps(parameters, sort_keys=True)}")
        metrics = run_trial(parameters, options, reporter=nni)
        nni.report_final_result(metrics)
    except Exception as exc:  # a failed trial must say why and exit non-zero: NNI marks it FAILED
        traceback.print_exc(file=sys.stderr)
        if isinstance(exc, ImportError):
            _log(f"this interpreter ({sys.executable}) lacks {exc.name or 'a dependency'}: NNI runs trialCommand "
                 f"with the PATH of the shell that started it; activate the venv before `nnictl create` "
                 f"(or use `python -m nni_gensynth.demo`, which puts the venv first on PATH)")
        return 1
    print(json.dumps(metrics, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
