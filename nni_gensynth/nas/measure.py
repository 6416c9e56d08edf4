"""Measuring frozen models of an NNI model space before they are trained.

One `ModelMeasurer` per search: given a frozen model (an `ExecutableModelSpace` with its sample),
it returns the metrics the requirements are judged on, either

- on hardware profiles, through the evaluator's one path: the frozen PyTorch module is built,
  counted (params, MACs), then exported and measured on each profile in turn, stopping at the
  first broken requirement, cached under one key (the module's structure and the labels the
  sample uses, so two samples that differ only in unused labels are one measurement); or
- from a user profiler called as `profiler(sample) -> {metric: value}` (a lookup table, a
  latency model, a device of your own).

Results are cached per network here too, so a strategy proposing a network twice measures once.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ..engine.fingerprint import canonical_json, text_hash
from ..engine.metrics import clean_metrics, short_repr
from ..engine.objective import Requirements
from .space import NasSearchSpace, _plain_json

_logger = logging.getLogger("nni_gensynth.nas")

SampleProfiler = Callable[[dict], Mapping[str, Any]]


def split_profiles(hw_profile: Union[str, Sequence[str], None]) -> tuple[str, ...]:
    """Profile names or paths from "host-cpu,host-tflite" or a list; () for None."""
    if hw_profile is None:
        return ()
    if isinstance(hw_profile, str):
        from ..evaluator.spec import split_profiles as split_text

        return split_text(hw_profile)
    if isinstance(hw_profile, (list, tuple)) and all(isinstance(p, str) and p for p in hw_profile):
        return tuple(hw_profile)
    raise TypeError(f"hw_profile must be a profile name or path, comma-separated names, or a list of them, "
                    f"got {short_repr(hw_profile)}")


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """A full input shape with a batch dimension, e.g. (1, 1, 16, 16); ValueError otherwise."""
    from ..hardware.shapes import parse_input_shape

    shape = parse_input_shape(input_shape, name="input_shape")
    if len(shape) < 2:
        raise ValueError(f"input_shape must have a batch dimension, got {short_repr(input_shape)}")
    return shape


def sample_text(sample: Mapping[str, Any], labels: Any) -> str:
    """Canonical text of `sample` restricted to `labels` (non-JSON values by their repr)."""
    return canonical_json({label: (sample[label] if _plain_json(sample[label]) else repr(sample[label]))
                           for label in sorted(labels) if label in sample})


class ModelMeasurer:
    """Metrics of frozen models before training: `measurer(model) -> dict` (see the module doc).

    Args:
        requirements: what is judged (measuring stops at the first broken requirement).
        hw_profile: profile names or paths (the first one's metrics as named, the others' prefixed
            with their backend), measured through the Evaluator; needs `input_shape`.
        input_shape: the network's input with a batch dimension, e.g. (1, 1, 16, 16).
        profiler: `fn(sample) -> {metric: value}` instead of hardware profiles.
        use_cache: reuse stored device measurements (False re-measures every network once).
    """

    def __init__(self, requirements: Requirements, hw_profile: Union[str, Sequence[str], None] = None,
                 input_shape: Optional[Sequence[int]] = None, profiler: Optional[SampleProfiler] = None,
                 use_cache: bool = True) -> None:
        profiles = split_profiles(hw_profile)
        if profiles and profiler is not None:
            raise ValueError("give hw_profile or profiler, not both")
        if profiler is not None and not callable(profiler):
            raise TypeError(f"profiler must be callable as profiler(sample) -> dict, got {short_repr(profiler)}")
        self.requirements = requirements
        self.profiler = profiler
        self.input_shape = check_input_shape(input_shape) if input_shape is not None else None
        if profiles and self.input_shape is None:
            raise ValueError("hw_profile needs input_shape (the network's input with a batch dimension)")
        try:
            self._evaluator = _evaluator(profiles, requirements, use_cache) if profiles else None
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"hw_profile: {exc}") from None
        self._space: Optional[NasSearchSpace] = None
        self._lock = threading.Lock()
        self._known: dict[str, dict] = {}
        self.calls = 0  # measurements made (cache hits excluded)

    @property
    def enabled(self) -> bool:
        """Whether anything is measured (hardware profiles or a profiler)."""
        return self._evaluator is not None or self.profiler is not None

    def bind(self, space: NasSearchSpace) -> None:
        """The search space of the models to measure (it tells which labels a sample uses)."""
        self._space = space

    def __call__(self, model: Any) -> dict[str, Any]:
        """Metrics of a frozen model (`model.sample` set); raises what measuring raises."""
        sample = dict(model.sample or {})
        return self.measure(sample, self._bound().used_labels(sample), model.executable_model)

    def measure(self, sample: Mapping[str, Any], used: Any, build: Callable[[], Any]) -> dict[str, Any]:
        """Metrics of the network `sample` describes, given the labels it uses; `build()` gives
        its PyTorch module (called only when the network must be measured on a device)."""
        network = sample_text(sample, set(used) & set(self._bound().model_labels))
        with self._lock:
            if network in self._known:
                return dict(self._known[network])
        if self.profiler is not None:
            raw = self.profiler(_plain_copy(sample))
        else:
            module = build().eval()
            key = text_hash(f"{_module_hash(module, self.input_shape)}|{network}")
            raw = self._evaluator.measure_module(module, key, input_shape=self.input_shape)
        metrics = clean_metrics(raw, keep=self.requirements.metrics) if isinstance(raw, Mapping) else None
        if metrics is None:
            raise ValueError(f"the measurement returned {short_repr(raw)}, not a dict of metrics")
        with self._lock:
            self.calls += 1
            self._known[network] = metrics
        return dict(metrics)

    def _bound(self) -> NasSearchSpace:
        if self._space is None:
            raise RuntimeError("ModelMeasurer.bind(space) must be called before measuring")
        return self._space

    def broken(self, metrics: Mapping[str, Any]) -> bool:
        """True when measured metrics already break a requirement."""
        return self.requirements.is_met(metrics, only_known=True) is False


def _plain_copy(sample: Mapping[str, Any]) -> dict:
    """A copy the profiler may keep or change without touching the model's sample."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in sample.items()}


def _module_hash(module: Any, input_shape: Sequence[int]) -> str:
    from ..hardware.export import module_hash

    return module_hash(module, input_shape)


def _evaluator(profiles: tuple[str, ...], requirements: Requirements, use_cache: bool) -> Any:
    """An Evaluator measuring on `profiles`, judging the requirements it can measure (the others,
    accuracy for one, are judged on what trials report)."""
    from ..evaluator import EvaluationSpec, Evaluator
    from ..evaluator.pipeline import TRAINED_METRICS

    spec = EvaluationSpec(hw_profiles=profiles, requirements={}, use_cache=use_cache)
    measurable = set(Evaluator(spec).constrainable()) - set(TRAINED_METRICS)
    before_training = {m: b for m, b in requirements.to_config().items() if m in measurable}
    return Evaluator(spec.replace(requirements=before_training))
