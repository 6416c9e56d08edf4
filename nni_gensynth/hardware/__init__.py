"""Hardware measurement, host side: profiles, export, transports, cache and ``measure``.

    from nni_gensynth.hardware import measure, load_profile
    m = measure(model, "host-cpu")          # a Measurement; m.metrics() for NNI
    measure_profiles(model, "host-cpu,host-tflite")  # latency_ms, ..., litert_latency_ms, ...
"""
from __future__ import annotations

from .measure import measure, measure_profiles
from .measurement import Measurement, MeasurementSpec
from .profiles import HardwareProfile, ProfileError, load_profile, load_profiles

__all__ = ["measure", "measure_profiles", "Measurement", "MeasurementSpec", "load_profile", "load_profiles",
           "HardwareProfile", "ProfileError"]
