"""``ModelProfiler``: the tuner's pre-training profiler on a hardware profile.

``ModelProfiler(profile)(parameters)`` builds the network a parameter dict describes
(``nni_gensynth.models.build_model``), measures it with ``measure`` (cached, so an architecture
is measured once per device and runtime) and returns the numeric hardware metrics:
latency_ms, latency_p90_ms, latency_iqr_ms, cv, energy_mj, peak_mem_mb (and latency_cpu_ms
for single-thread profiles).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

from .measure import measure
from .profiles import HardwareProfile, load_profile


class ModelProfiler:
    """Callable ``fn(parameters) -> {metric: float}`` measuring each architecture on one device."""

    def __init__(self, profile: Union[str, os.PathLike, HardwareProfile], *,
                 input_shape: Optional[Sequence[int]] = None, num_classes: int = 10,
                 builder: Union[str, Callable[..., Any], None] = None, use_cache: bool = True) -> None:
        self.profile = load_profile(profile)
        self.input_shape = tuple(int(d) for d in (input_shape or self.profile.input_shape))
        if len(self.input_shape) < 2 or any(d < 1 for d in self.input_shape):
            raise ValueError(f"input_shape must be (batch, channels, ...) positive integers, got {self.input_shape}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.builder = builder
        self.use_cache = use_cache

    def __call__(self, parameters: Mapping[str, Any]) -> Dict[str, float]:
        from ..models import build_model

        kwargs = {"builder": self.builder} if self.builder is not None else {}
        model = build_model(parameters, num_classes=self.num_classes, in_channels=self.input_shape[1], **kwargs)
        metrics = measure(model, self.profile, input_shape=self.input_shape, use_cache=self.use_cache).metrics()
        return {k: float(v) for k, v in metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "samples"}

    def __repr__(self) -> str:
        return f"ModelProfiler({self.profile.name!r}, input_shape={self.input_shape})"
