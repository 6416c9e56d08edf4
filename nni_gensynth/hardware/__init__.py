"""Hardware measurement, host side: profiles, export, transports, cache and ``measure``.

    from nni_gensynth.hardware import measure, load_profile
    m = measure(model, "host-cpu")          # a Measurement; m.metrics() for NNI
    measure_profiles(model, "host-cpu,host-tflite")  # latency_ms, ..., litert_latency_ms, ...

The path of one measurement: profile -> ``RunRequest`` (request.py) -> transport (transports/)
-> device runner -> answer read and checked (answer.py) -> ``Measurement`` -> ``MeasurementCache``.
An int8 measurement exports the network quantized like it ships (quantize.py, calibrated on
training images from calibration.py; its kernels checked in the file by kernels.py).
"""
from __future__ import annotations

from .answer import AnswerError
from .cache import CacheWarning, MeasurementCache
from .measure import measure, measure_profiles, prefixed
from .measurement import Measurement, MeasurementSpec
from .pool import DevicePool
from .profiles import HardwareProfile, ProfileError, load_profile, load_profiles
from .quantize import QuantizationError
from .request import RunRequest, runner_argv
from .shapes import parse_input_shape
from .transports import DeviceError

__all__ = ["measure", "measure_profiles", "prefixed", "Measurement", "MeasurementSpec", "MeasurementCache",
           "CacheWarning", "load_profile", "load_profiles", "HardwareProfile", "ProfileError", "DeviceError",
           "AnswerError", "QuantizationError", "DevicePool", "RunRequest", "runner_argv", "parse_input_shape"]
