"""``ModelProfiler``: the tuner's pre-training profiler on a hardware profile.

``ModelProfiler(profile)(parameters)`` is ``nni_gensynth.trial.TrialProfiler`` bound to one
hardware profile: it builds the network the trial would build from a parameter dict, measures it
at the trial's input shape with ``measure`` and returns the numeric metrics (latency_ms,
latency_p90_ms, cv, energy_mj, peak_mem_mb, params, macs, ...). It shares the trial's cache key,
so a network the tuner measured before proposing it is a cache hit when its trial runs.
"""
from __future__ import annotations

import os
from typing import Any, Sequence, Union

from ..trial import TrialProfiler
from .profiles import HardwareProfile, load_profiles


class ModelProfiler(TrialProfiler):
    """``fn(parameters) -> {metric: float}`` on ``profile`` (a name, a path or a HardwareProfile,
    or several: "host-cpu,host-tflite", see ``load_profiles``); other keyword arguments
    (image_size, channels, num_classes, builder, use_cache) as for TrialProfiler, defaulting to
    the trial's."""

    def __init__(self, profile: Union[str, os.PathLike, HardwareProfile, Sequence[Any]], **kwargs: Any) -> None:
        super().__init__(hw_profile=load_profiles(profile), **kwargs)

    def __repr__(self) -> str:
        names = ",".join(p.name for p in self.hw_profile)
        return f"ModelProfiler({names!r}, input_shape={self.input_shape})"
