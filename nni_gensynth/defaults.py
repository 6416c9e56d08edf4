"""The one source of the build and evaluation defaults (torch-free, so light modules can read them).

A trial, the tuner's screening, `gensynth generate`/`export` and the benchmarks all build and
measure a candidate the same way unless told otherwise: these are the values they share.
"""
from __future__ import annotations

DEFAULT_BUILDER = "macro_mobilenet"   # nni_gensynth.models.BUILDERS name
DEFAULT_IMAGE_SIZE = 16               # pixels, square inputs
DEFAULT_CHANNELS = 1                  # input channels (digits are grey)
DEFAULT_NUM_CLASSES = 10              # classes when no dataset says otherwise (digits, CIFAR-10)
DEFAULT_EPOCHS = 5                    # training epochs of a trial
DEFAULT_PROFILE = "host-cpu"          # hardware profile a trial measures on
NO_PROFILE = "none"                   # --hw-profile none: no measurement
DEFAULT_PROBE_FRACTION = 0.95         # share of a layer's Taylor importance a width response keeps
NOISY_LATENCY_RSE = 0.03              # a median less certain than this also reports its 95% upper bound
