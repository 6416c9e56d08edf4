"""Names the host and the device runner share: backends, energy sources, the parent-pid variable.

The one source of these names for both sides. It lives in the device package because the device
runner may import nothing outside it (the host imports it from here; it is plain data).
"""
from __future__ import annotations

# backend -> model file format (the file suffix without its dot)
BACKEND_FORMATS = {"onnxruntime": "onnx", "litert": "tflite"}
BACKENDS = tuple(BACKEND_FORMATS)

# what a profile may ask for ("auto": the best the device has) ...
ENERGY_SOURCES = ("auto", "rapl", "battery", "pmic", "ina219", "model")
# ... and what an answer may name (a measurement always says which source it used)
MEASURED_ENERGY_SOURCES = tuple(s for s in ENERGY_SOURCES if s != "auto")

# LiteRT delegates a profile may ask for: "xnnpack" (LiteRT's default CPU delegate), "none" (LiteRT's
# built-in kernels, no delegate), "gpu" and "nnapi" (TFLite benchmark_model on Android only);
# the device runner applies the first two.
DELEGATES = ("xnnpack", "none", "gpu", "nnapi")
RUNNER_DELEGATES = ("xnnpack", "none")

# Set by the local transport: the runner exits when the process with this pid is gone, so a
# killed host leaves no runner behind (see nni_gensynth.device.system.exit_with_parent).
PARENT_PID_ENV = "GENSYNTH_RUNNER_PARENT_PID"
