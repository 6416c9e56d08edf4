"""HardwareFilter: "measure on the device before training, skip what breaks the requirements" for
any NNI strategy (RegularizedEvolution, Random, TPE, ...), so strategies compare on equal terms.

    strategy = Chain(RegularizedEvolution(seed=0),
                     HardwareFilter({"latency_ms": {"max": 2.0}}, hw_profile="host-cpu", input_shape=(1, 1, 16, 16)))

An NNI `Filter` middleware whose filter function receives the model the strategy submits (NNI's
`Filter` docstring shows a sample; its code passes the model, and so does this one). Each model is
measured by a `ModelMeasurer` (the frozen module on the hardware profiles through the evaluator,
cached; or the user's `profiler(sample)`); a model whose measurement breaks a requirement is not
trained: NNI marks it Invalid (with `metric_for_invalid` as its metric when given) and the
strategy moves on. A model that cannot be measured is trained (nothing is known against it).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from nni.nas.space import ExecutableModelSpace
from nni.nas.strategy.middleware import Filter

from ..engine.metrics import short_repr
from ..engine.objective import Requirements
from ..importing import import_callable
from .measure import ModelMeasurer
from .space import NasSearchSpace

_logger = logging.getLogger("nni_gensynth.nas")


class HardwareFilter(Filter):
    """Measures every submitted model before training; blocks those that break `constraints`.

    Args:
        constraints: {metric: {"max": x} | {"min": x} | both} on measured metrics (latency_ms,
            energy_mj, peak_mem_mb, params, macs, a second profile's litert_latency_ms, ...).
        hw_profile: hardware profile names or paths (a list, or comma-separated); needs `input_shape`.
        input_shape: the networks' input with a batch dimension, e.g. (1, 1, 16, 16).
        profiler: instead of `hw_profile`, `fn(sample) -> {metric: value}` (or "module:callable").
        metric_for_invalid: the metric a blocked model gets (None: no metric, as NNI's Filter).
        patience: blocked models in a row after which the filter reports no budget left.
        use_cache: reuse stored device measurements.

    `measured` counts the models measured, `blocked` those not trained, `measurements` keeps
    each measured sample with its metrics.
    """

    def __init__(self, constraints: Mapping[str, Any], *, hw_profile: Union[str, Sequence[str], None] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 profiler: Union[str, Callable[[dict], Mapping[str, Any]], None] = None,
                 metric_for_invalid: Any = None, patience: int = 1000, use_cache: bool = True) -> None:
        try:
            requirements = Requirements(constraints)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"constraints: {exc}") from None
        if not requirements:
            raise ValueError("constraints: give at least one requirement to filter by")
        if hw_profile is None and profiler is None:
            raise ValueError("give hw_profile (with input_shape) or profiler: the filter needs measurements")
        if isinstance(profiler, str):
            profiler = import_callable(profiler, "profiler")
        super().__init__(self._admit, metric_for_invalid=metric_for_invalid, patience=patience)
        self.constraints = dict(constraints)
        self.requirements = requirements
        self._measurer = ModelMeasurer(requirements, hw_profile, input_shape, profiler, use_cache=use_cache)
        self._lock = threading.Lock()
        self.measured = 0
        self.blocked = 0
        self.measurements: list[tuple[dict, dict]] = []

    def extra_repr(self) -> str:
        return f"constraints={self.constraints!r}"

    def _initialize_model_space(self, model_space: ExecutableModelSpace) -> ExecutableModelSpace:
        self._measurer.bind(NasSearchSpace(model_space))
        return super()._initialize_model_space(model_space)

    def _admit(self, model: ExecutableModelSpace) -> bool:
        """True to train `model`: its measurement meets the requirements, or it cannot be measured."""
        try:
            metrics = self._measurer(model)
        except Exception as exc:  # noqa: BLE001 - a device failure must not stop the strategy
            _logger.warning("could not measure %s (%s: %s); it is trained unmeasured", model,
                            type(exc).__name__, short_repr(str(exc)))
            return True
        broken = self._measurer.broken(metrics)
        with self._lock:
            self.measured += 1
            self.blocked += int(broken)
            self.measurements.append((dict(model.sample or {}), metrics))
        if broken:
            _logger.info("measured %s, which breaks %r: not trained", metrics, self.requirements)
        return not broken
