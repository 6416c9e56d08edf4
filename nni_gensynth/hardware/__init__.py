"""Hardware measurement, host side: profiles, export, transports, cache and ``measure``.

    from nni_gensynth.hardware import measure, load_profile
    m = measure(model, "host-cpu")          # a Measurement; m.metrics() for NNI
"""
from __future__ import annotations

from .measure import measure
from .measurement import Measurement, MeasurementSpec
from .profiles import HardwareProfile, ProfileError, load_profile

__all__ = ["measure", "Measurement", "MeasurementSpec", "load_profile", "HardwareProfile", "ProfileError"]
