"""Evaluator: the one path of a candidate, whoever asks for it.

    build -> count -> measure (each profile in turn, stopping at the first broken requirement)
          -> train -> probe -> metrics

The trial (`python -m nni_gensynth.trial`), the tuner's screening before training (`hw_profile`),
the tuner's prototype, `gensynth generate`, the demo and the benchmarks all evaluate candidates
through an `Evaluator` built from an `EvaluationSpec`. Latency and energy depend on the
architecture, not on trained weights, so a candidate is measured before it is trained and
training is spent only on candidates that can meet the requirements. One cache key per network
(`cache_key`): a network the tuner measured before proposing it is a cache hit in its trial.

Precision: each profile measures float32, int8 or both (its `precision`, or the spec's). The int8
model is quantized statically like it ships (hardware.quantize), calibrated on training images;
its latency is measured before training (the untrained weights' kernels cost the same), its
accuracy after training (`int8_accuracy` on the validation split, `test_int8_accuracy` on the
test split; evaluator.int8). Int8 figures are named `int8_latency_ms`, `litert_int8_latency_ms`...

Torch is imported when a network is first built, so a tuner that only reads the spec stays light.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from ..engine.metrics import TRAINING_KEY, finite_float
from ..engine.objective import Requirements, netscore
from ..engine.state import json_safe
from ..device.protocol import BACKENDS
from ..hardware.precision import INT8, measured_precisions, metric_scope, scoped
from .spec import EvaluationSpec, SpecError

# What counting and training add to the metrics, besides the hardware figures.
COUNT_METRICS = ("params", "macs")
FLOAT_TRAINED_METRICS = ("accuracy", "netscore", "test_accuracy")
# The int8 model's accuracies, for every profile that measures int8 (scoped like its hardware
# figures: int8_accuracy, litert_int8_accuracy; the test split's with "test_" in front).
INT8_TRAINED_METRICS = tuple(name for scope in ("int8",) + tuple(f"{b}_int8" for b in BACKENDS)
                             for name in (f"{scope}_accuracy", f"test_{scope}_accuracy"))
TRAINED_METRICS = FLOAT_TRAINED_METRICS + INT8_TRAINED_METRICS
# Hardware figures a profile's measurement reports (Measurement.metrics()); the numeric ones can
# be constrained. A second profile's keys carry its backend as a prefix (litert_latency_ms), an
# int8 measurement's "int8" after it (int8_latency_ms, litert_int8_latency_ms).
HARDWARE_METRICS = ("latency_ms", "latency_p90_ms", "latency_iqr_ms", "latency_cpu_ms", "cv", "robust_cv",
                    "latency_rse", "energy_mj", "peak_mem_mb", "samples")
HARDWARE_FACTS = ("energy_source", "backend", "device", "profile", "runtime", "delegate")

OnEpoch = Callable[[int, dict], None]


def _log(message: str) -> None:
    print(f"[evaluator] {message}", file=sys.stderr, flush=True)


class Evaluator:
    """Builds, measures, trains and probes candidates of one spec (see the module doc).

    `data`: a DataSplit to use instead of loading `spec.data` (tests, benchmarks sharing one).
    """

    def __init__(self, spec: EvaluationSpec = EvaluationSpec(), data: Any = None) -> None:
        if not isinstance(spec, EvaluationSpec):
            raise TypeError(f"spec must be an EvaluationSpec, got {type(spec).__name__}")
        from ..hardware.profiles import load_profiles

        self.spec = spec
        self.requirements = Requirements(spec.requirements)
        self.profiles = tuple(load_profiles(list(spec.hw_profiles))) if spec.hw_profiles else ()
        self._data = data
        self._calibration: Any = None
        self._check_requirement_metrics()

    def __repr__(self) -> str:
        return (f"Evaluator(builder={self.spec.builder!r}, input_shape={self.input_shape}, "
                f"profiles={[p.name for p in self.profiles]}, requirements={self.requirements!r})")

    # -- what is evaluated ------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.spec.input_shape

    @property
    def data(self) -> Any:
        """The dataset (loaded on first use)."""
        if self._data is None:
            from ..data import load_dataset

            self._data = load_dataset(self.spec.data, image_size=self.spec.image_size, channels=self.spec.channels)
        return self._data

    @property
    def num_classes(self) -> int:
        """The spec's class count, else the dataset's."""
        return self.spec.num_classes if self.spec.num_classes is not None else int(self.data.num_classes)

    def precisions(self, index: int) -> tuple[str, ...]:
        """What profile `index` measures, float32 first: the spec's precision, else the profile's."""
        return measured_precisions(self.spec.precision or self.profiles[index].precision)

    def scope(self, index: int, precision: str) -> str:
        """How profile `index`'s figures in `precision` are named ("", "int8", "litert_int8", ...)."""
        return metric_scope(precision, self.profiles[index].backend if index > 0 else None)

    def constrainable(self) -> list[str]:
        """Metrics this evaluator reports that requirements may name."""
        names = list(COUNT_METRICS) + list(FLOAT_TRAINED_METRICS)
        for i in range(len(self.profiles)):
            for precision in self.precisions(i):
                scope = self.scope(i, precision)
                names += [scoped(scope, key) for key in HARDWARE_METRICS]
                if precision == INT8:
                    names += [scoped(scope, "accuracy"), "test_" + scoped(scope, "accuracy")]
        return names

    def _check_requirement_metrics(self) -> None:
        known = set(self.constrainable())
        for name in self.requirements.metrics:
            if name in known:
                continue
            if name in HARDWARE_METRICS and not self.profiles:
                raise SpecError(f"constraints[{name!r}] needs a hardware measurement, but no hardware profile is set")
            if "int8" in name.split("_"):
                raise SpecError(f"constraints[{name!r}] needs an int8 measurement: set precision int8 or both "
                                f"(--precision or the profile's precision); constrainable: {', '.join(sorted(known))}")
            raise SpecError(f"constraints[{name!r}]: not a metric this evaluation reports; constrainable: "
                            f"{', '.join(sorted(known))}")

    def calibration(self, input_shape: Optional[Sequence[int]] = None, *, for_latency: bool = False) -> Any:
        """Calibration inputs for an int8 export: training images (never validation or test ones).
        `for_latency`: a few of them, for a model whose kernels, not values, are measured; then an
        input the dataset does not fit (a frozen NAS module) is calibrated on seeded noise."""
        from ..hardware.calibration import (DEFAULT_CALIBRATION_IMAGES, LATENCY_CALIBRATION_IMAGES, from_noise,
                                            from_training)

        shape = tuple(int(d) for d in (input_shape if input_shape is not None else self.input_shape))
        count = LATENCY_CALIBRATION_IMAGES if for_latency else DEFAULT_CALIBRATION_IMAGES
        if self._calibration is None:
            self._calibration = from_training(self.data, count=DEFAULT_CALIBRATION_IMAGES)
        if self._calibration.sample_shape == shape:
            return self._calibration.first(count)
        if for_latency:
            return from_noise(shape, count)
        raise SpecError(f"int8 accuracy: the dataset's images have shape {self._calibration.sample_shape[1:]}, the "
                        f"network's input is {shape[1:]}")

    # -- build, count, measure --------------------------------------------------------------
    def build(self, parameters: Mapping[str, Any]) -> Any:
        """The network `parameters` describe, in eval mode (ValueError naming a bad key)."""
        from ..models import build_model

        return build_model(parameters, num_classes=self.num_classes, in_channels=self.spec.channels,
                           builder=self.spec.builder).eval()

    def cache_key(self, parameters: Mapping[str, Any], model: Any) -> str:
        """What a measurement depends on: the network (its `network_key` when the builder gives
        one, else the architecture keys without training hyperparameters), builder, input shape
        and class count."""
        from ..engine.fingerprint import architecture_hash
        from ..training import HYPERPARAMETER_KEYS

        network: Any = getattr(model, "network_key", None)
        if network is None:
            network = {k: v for k, v in parameters.items() if k not in HYPERPARAMETER_KEYS}
        return architecture_hash({"network": network, "builder": self.spec.builder,
                                  "input_shape": list(self.input_shape), "num_classes": self.num_classes})

    def training_key(self, parameters: Mapping[str, Any], model: Any) -> str:
        """What a training depends on: the network (`cache_key`) and the recipe `parameters` give
        (lr, batch size, ...; epochs and seed from the spec). Parameter dicts with equal keys
        train identically on this evaluator's data, so the engine trains each key once."""
        from dataclasses import asdict

        from ..engine.fingerprint import architecture_hash

        return architecture_hash({"network": self.cache_key(parameters, model),
                                  "recipe": asdict(self.recipe(parameters))})

    def broken(self, facts: Mapping[str, Any]) -> bool:
        """True when what is known already breaks a requirement."""
        return self.requirements.is_met(facts, only_known=True) is False

    def measure(self, parameters: Mapping[str, Any], model: Any = None, *, use_cache: Optional[bool] = None,
                stop_when_broken: bool = True) -> dict[str, Any]:
        """Counts, then each profile's measurement in turn, float32 before int8: the first
        profile's metrics as named, the others' prefixed with their backend, int8 ones with
        "int8". With `stop_when_broken`, measuring stops as soon as what is known breaks a
        requirement (no device time is spent on such a network)."""
        model = self.build(parameters) if model is None else model
        return self._measure_all(model, self.cache_key(parameters, model), self.input_shape, use_cache,
                                 stop_when_broken)

    def measure_on(self, index: int, parameters: Mapping[str, Any], model: Any = None, *,
                   use_cache: Optional[bool] = None, precision: Optional[str] = None) -> dict[str, Any]:
        """One profile's metrics (`self.profiles[index]`, named as in `measure`): in `precision`,
        or in each precision the profile measures."""
        model = self.build(parameters) if model is None else model
        key = self.cache_key(parameters, model)
        facts: dict[str, Any] = {}
        for each in (precision,) if precision is not None else self.precisions(index):
            facts.update(self._measured(index, each, model, key, self.input_shape, use_cache))
        return facts

    def measure_module(self, model: Any, key: str, *, input_shape: Optional[Sequence[int]] = None,
                       use_cache: Optional[bool] = None, stop_when_broken: bool = True) -> dict[str, Any]:
        """`measure` for a module built elsewhere (a frozen NNI model space), cached under `key`:
        counts, then each profile in turn (the first one's metrics as named, the others' prefixed
        with their backend), stopping at the first broken requirement. `input_shape` defaults to
        the spec's. The caller's key must change whenever the network does."""
        shape = tuple(int(d) for d in input_shape) if input_shape is not None else self.input_shape
        return self._measure_all(model, key, shape, use_cache, stop_when_broken)

    def _measure_all(self, model: Any, key: str, shape: tuple[int, ...], use_cache: Optional[bool],
                     stop_when_broken: bool) -> dict[str, Any]:
        """Counts, then every (profile, precision) in turn until a requirement is broken."""
        from ..counting import count

        facts: dict[str, Any] = dict(count(model, shape))
        for i in range(len(self.profiles)):
            for precision in self.precisions(i):
                if stop_when_broken and self.broken(facts):
                    return facts
                facts.update(self._measured(i, precision, model, key, shape, use_cache))
        return facts

    def _measured(self, index: int, precision: str, model: Any, key: str, shape: tuple[int, ...],
                  use_cache: Optional[bool]) -> dict[str, Any]:
        """One measurement's metrics, named by `scope`; its warnings go to the log."""
        from ..hardware import measure
        from ..hardware.measure import prefixed

        profile = self.profiles[index]
        calibration = self.calibration(shape, for_latency=True) if precision == INT8 else None
        measured = measure(model, profile, input_shape=shape, arch_hash=key, precision=precision,
                           calibration=calibration, use_cache=self.spec.use_cache if use_cache is None else use_cache)
        if not measured.from_cache:
            for warning in measured.warnings:
                _log(f"{profile.name} ({precision}): {warning}")
        scope = self.scope(index, precision)
        return prefixed(measured.metrics(), scope) if scope else measured.metrics()

    def __call__(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The engine's profiler: the numeric facts of `measure` (before any training), and the
        `training_key` under TRAINING_KEY (the engine never trains one key twice)."""
        model = self.build(parameters)
        facts = self.measure(parameters, model)
        numeric: dict[str, Any] = {k: v for k, v in ((k, finite_float(v)) for k, v in facts.items())
                                   if v is not None}
        numeric[TRAINING_KEY] = self.training_key(parameters, model)
        return numeric

    # -- train, probe -------------------------------------------------------------------------
    def train(self, model: Any, parameters: Mapping[str, Any], *, on_epoch: Optional[OnEpoch] = None,
              progress: bool = True) -> Any:
        """Train `model` with the spec's recipe (hyperparameters in `parameters` override it);
        returns the TrainResult (validation accuracy per epoch, test accuracy at the end)."""
        from ..training import seed_everything, train

        seed_everything(self.spec.seed, self.spec.threads)  # batch order independent of what came before
        model.train()
        return train(model, self.data, self.recipe(parameters), on_epoch=on_epoch, progress=progress)

    def recipe(self, parameters: Mapping[str, Any]) -> Any:
        """The TrainConfig of the spec, with the hyperparameters `parameters` carry (lr, ...)."""
        from ..training import TrainConfig

        return TrainConfig(epochs=self.spec.epochs, seed=self.spec.seed,
                           threads=self.spec.threads).with_parameters(parameters)

    def int8_accuracy(self, model: Any, key: str) -> dict[str, Any]:
        """The trained network's int8 accuracies, for the profiles that measure int8 (evaluator.int8)."""
        if not any(INT8 in self.precisions(i) for i in range(len(self.profiles))):
            return {}
        from .int8 import int8_accuracy_metrics

        started = time.perf_counter()
        metrics = int8_accuracy_metrics(self, model, key)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("int8_accuracy"))
        _log(f"{shown} ({time.perf_counter() - started:.1f} s to quantize and evaluate)")
        return metrics

    def probes(self, model: Any) -> bool:
        """Whether trained networks are probed: the spec says so, or the network names probe sites."""
        has_sites = getattr(model, "probe_sites", None) is not None
        if self.spec.probe and not has_sites:
            raise SpecError(f"--probe: builder {self.spec.builder!r} builds a network without probe_sites()")
        return has_sites and self.spec.probe is not False

    def probe(self, model: Any) -> dict[str, Any]:
        """Probe responses of a trained network on the validation split and synthetic stimuli."""
        from ..probing import probe_responses

        data = self.data
        return probe_responses(model, data.x_val, data.y_val, seed=self.spec.seed,
                               fraction=self.spec.probe_fraction)

    # -- the whole candidate ------------------------------------------------------------------
    def evaluate(self, parameters: Mapping[str, Any], *, reporter: Any = None, weights_path: Optional[str] = None,
                 progress: bool = True, stop_when_broken: bool = True) -> dict[str, Any]:
        """Build, count, measure, train, probe: the metrics dict a trial reports (see trial.py).

        `reporter` has `report_intermediate_result(dict)` (the `nni` module in a trial).
        `stop_when_broken=False` measures every profile even when a requirement is already
        broken (the prototype, whose figures define relative requirements).
        """
        from ..training import seed_everything

        if not isinstance(parameters, Mapping) or not parameters:
            raise ValueError("parameters must be a non-empty mapping (pass --parameters or run under NNI)")
        config = self.recipe(parameters)
        seed_everything(self.spec.seed, self.spec.threads)  # weight init
        model = self.build(parameters)
        spec = getattr(model, "spec", None)
        arch = spec.arch_string() if hasattr(spec, "arch_string") else None
        key = self.cache_key(parameters, model)

        started = time.perf_counter()
        facts = self.measure(parameters, model, stop_when_broken=stop_when_broken)
        measure_seconds = time.perf_counter() - started
        _log(f"arch={arch} params={facts['params']} macs={facts['macs']} latency_ms={facts.get('latency_ms')} "
             f"({measure_seconds:.1f} s to measure)")
        metrics: dict[str, Any] = dict(facts)
        feasible_before_training = self.requirements.is_met(metrics, only_known=True)

        train_seconds = 0.0
        trained = None
        if self.spec.skip_infeasible and feasible_before_training is False:
            _log(f"infeasible before training ({self.requirements!r}); training skipped")
        else:
            def on_epoch(epoch: int, record: dict) -> None:
                if reporter is not None:
                    reporter.report_intermediate_result({"default": record["accuracy"], **record})

            started = time.perf_counter()
            trained = self.train(model, parameters, on_epoch=on_epoch, progress=progress)
            train_seconds = time.perf_counter() - started
            model.eval()
            if weights_path:
                import torch

                torch.save(model.state_dict(), weights_path)
            metrics.update(trained.metrics())
            metrics.update(self.int8_accuracy(model, key))
            if self.probes(model):
                started = time.perf_counter()
                metrics["responses"] = self.probe(model)
                _log(f"probe responses ({time.perf_counter() - started:.1f} s): {metrics['responses']}")

        accuracy = metrics.get("accuracy")
        metrics["netscore"] = (netscore(accuracy, facts["params"], facts["macs"])
                               if accuracy and facts["macs"] > 0 else None)
        feasible = trained is not None and self.requirements.is_met(metrics) is True
        metrics.update({
            "default": accuracy if feasible else 0.0,
            "feasible": bool(feasible),
            "trained": trained is not None,
            "arch": arch,
            "network": getattr(model, "network_key", None),
            "arch_hash": key,
            TRAINING_KEY: self.training_key(parameters, model),
            "lr": config.lr,
            "measure_seconds": round(measure_seconds, 3),
            "train_seconds": round(train_seconds, 3),
        })
        metrics.setdefault("accuracy", None)
        return {k: json_safe(v) for k, v in metrics.items()}
