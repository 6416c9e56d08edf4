"""GenSynth for NNI 3.0's NAS API: a strategy over model spaces, and a measure-first filter.

    from nni_gensynth.nas import GenSynthStrategy, HardwareFilter

space: a model space's mutables as the engine's SearchSpace (nested, constraints honoured);
measure: frozen models measured before training; strategy: GenSynthStrategy; filter: HardwareFilter
for NNI's own strategies. Importing this package imports `nni.nas` (and pytorch-lightning).
"""
from __future__ import annotations

from .filter import HardwareFilter
from .measure import ModelMeasurer
from .space import NasSearchSpace, NasSpaceError
from .strategy import GenSynthStrategy

__all__ = ["GenSynthStrategy", "HardwareFilter", "ModelMeasurer", "NasSearchSpace", "NasSpaceError"]
