"""Measuring synthesised candidates on the host: counts first, then ONNX Runtime and LiteRT.

`HostProfiler` is GenSynth's profiler (`fn(parameters) -> {metric: float}`) for a builder's
space: it builds the network, counts params and MACs (cheap), and — unless the counts already
break the requirements, when no device time is spent — measures it on the first hardware
profile (latency_ms, energy_mj, peak_mem_mb, ...). Further profiles add their metrics prefixed
with the profile's backend (`litert_latency_ms`, `litert_energy_mj` for host-tflite), so one
candidate is measured on ONNX Runtime and LiteRT side by side. `describe` adds the non-numeric
facts (energy source, backend, device) for reports.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from .engine.objective import Requirements

PRIMARY_PROFILE = "host-cpu"


def _number(value: Any) -> Optional[float]:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class HostProfiler:
    """`fn(parameters) -> {metric: float}`: counts, then measurements on `profiles` (first one
    unprefixed). With `limits`, a network whose counts already break them is not measured."""

    def __init__(self, builder: str, input_shape: Sequence[int] = (1, 3, 32, 32), num_classes: int = 10,
                 profiles: Sequence[str] = (PRIMARY_PROFILE,), limits: Optional[Requirements] = None,
                 use_cache: bool = True) -> None:
        if not profiles:
            raise ValueError("HostProfiler needs at least one hardware profile")
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 4 or any(d < 1 for d in shape):
            raise ValueError(f"input_shape must be N,C,H,W with positive sizes, got {tuple(input_shape)}")
        self.builder = builder
        self.input_shape = shape
        self.num_classes = num_classes
        self.profiles = tuple(profiles)
        self.limits = limits
        self.use_cache = use_cache

    def build(self, parameters: Mapping[str, Any]) -> Any:
        from .models import build_model

        return build_model(parameters, num_classes=self.num_classes, in_channels=self.input_shape[1],
                           builder=self.builder).eval()

    def __call__(self, parameters: Mapping[str, Any]) -> dict[str, float]:
        facts = self.describe(parameters)
        return {k: v for k, v in ((k, _number(v)) for k, v in facts.items()) if v is not None}

    def describe(self, parameters: Mapping[str, Any], model: Any = None, use_cache: Optional[bool] = None) -> dict[str, Any]:
        """Counts and every profile's metrics (with energy_source, backend, device) of one network."""
        from .counting import count

        model = self.build(parameters) if model is None else model
        facts: dict[str, Any] = dict(count(model, self.input_shape))
        if self.limits is not None and self.limits.is_met(facts, only_known=True) is False:
            return facts
        for i, profile in enumerate(self.profiles):
            facts.update(self.measure(model, parameters, profile, prefix=i > 0, use_cache=use_cache))
        return facts

    def measure(self, model: Any, parameters: Mapping[str, Any], profile: str, prefix: bool = False,
                use_cache: Optional[bool] = None) -> dict[str, Any]:
        """One profile's metrics of `model` (keys prefixed with its backend when `prefix`)."""
        from .hardware import load_profile, measure
        from .trial import measurement_hash

        arch_hash = measurement_hash(parameters, self.builder, self.input_shape, self.num_classes,
                                     getattr(model, "network_key", None))
        result = measure(model, profile, input_shape=self.input_shape, arch_hash=arch_hash,
                         use_cache=self.use_cache if use_cache is None else use_cache)
        metrics = dict(result.metrics())
        if not prefix:
            return metrics
        backend = load_profile(profile).backend
        return {f"{backend}_{k}": v for k, v in metrics.items()}
