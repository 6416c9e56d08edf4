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
from typing import Any, Mapping, Optional, Sequence, Union

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
                 profiles: Union[str, Sequence[Any]] = (PRIMARY_PROFILE,), limits: Optional[Requirements] = None,
                 use_cache: bool = True) -> None:
        from .hardware import load_profiles

        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 4 or any(d < 1 for d in shape):
            raise ValueError(f"input_shape must be N,C,H,W with positive sizes, got {tuple(input_shape)}")
        self.builder = builder
        self.input_shape = shape
        self.num_classes = num_classes
        self.profiles = load_profiles(profiles)  # HardwareProfiles, one backend each; at least one
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
        """Counts and every profile's metrics (with energy_source, backend, device) of one network;
        with `limits`, measuring stops as soon as what is known already breaks them."""
        from .counting import count
        from .hardware import measure_profiles

        model = self.build(parameters) if model is None else model
        facts: dict[str, Any] = dict(count(model, self.input_shape))
        if self.broken(facts):
            return facts
        facts.update(measure_profiles(model, self.profiles, input_shape=self.input_shape,
                                      arch_hash=self.arch_hash(parameters, model),
                                      use_cache=self.use_cache if use_cache is None else use_cache,
                                      enough=lambda measured: self.broken({**facts, **measured})))
        return facts

    def broken(self, facts: Mapping[str, Any]) -> bool:
        """True when `facts` already break the limits (never without limits)."""
        return self.limits is not None and self.limits.is_met(facts, only_known=True) is False

    def arch_hash(self, parameters: Mapping[str, Any], model: Any) -> str:
        """The measurement-cache key of the network (shared with the trial)."""
        from .trial import measurement_hash

        return measurement_hash(parameters, self.builder, self.input_shape, self.num_classes,
                                getattr(model, "network_key", None))

    def measure(self, model: Any, parameters: Mapping[str, Any], profile: Any, prefix: bool = False,
                use_cache: Optional[bool] = None) -> dict[str, Any]:
        """One profile's metrics of `model` (keys prefixed with its backend when `prefix`)."""
        from .hardware import load_profile, measure
        from .hardware.measure import prefixed

        loaded = load_profile(profile)
        metrics = measure(model, loaded, input_shape=self.input_shape, arch_hash=self.arch_hash(parameters, model),
                          use_cache=self.use_cache if use_cache is None else use_cache).metrics()
        return prefixed(metrics, loaded.backend) if prefix else metrics
