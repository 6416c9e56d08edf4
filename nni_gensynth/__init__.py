"""nni-gensynth: generative synthesis (GenSynth) of efficient networks, as an NNI 3.0 tuner.

The public names are re-exported lazily, so that importing the package does not import NNI or
torch: the engine and the on-device runner must work without them.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # the engine (numpy/scipy only)
    "GenSynth": "nni_gensynth.engine",
    "SearchSpace": "nni_gensynth.engine",
    "Architecture": "nni_gensynth.engine",
    "Objective": "nni_gensynth.engine",
    "Objectives": "nni_gensynth.engine",
    "parse_objectives": "nni_gensynth.engine",
    "hypervolume": "nni_gensynth.engine",
    "Requirements": "nni_gensynth.engine",
    "netscore": "nni_gensynth.engine",
    "netscore_hw": "nni_gensynth.engine",
    # hardware measurement (imports torch only when a module is measured)
    "measure": "nni_gensynth.hardware",
    "Measurement": "nni_gensynth.hardware",
    "load_profile": "nni_gensynth.hardware",
    "HardwareProfile": "nni_gensynth.hardware",
    # experiment results: report and reading (imports matplotlib when the report is written)
    "write_report": "nni_gensynth.results",
    "load_experiment": "nni_gensynth.results",
    # NNI adapter (imports nni)
    "GenSynthTuner": "nni_gensynth.tuner",
    # NNI NAS strategy and measure-first filter (import nni.nas)
    "GenSynthStrategy": "nni_gensynth.nas",
    "HardwareFilter": "nni_gensynth.nas",
    # model builders (import torch)
    "build_model": "nni_gensynth.models",
    # the evaluator: one path for a candidate (build, count, measure, train, probe)
    "Evaluator": "nni_gensynth.evaluator",
    "EvaluationSpec": "nni_gensynth.evaluator",
    # probing (torch)
    "probe": "nni_gensynth.probing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nni_gensynth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
