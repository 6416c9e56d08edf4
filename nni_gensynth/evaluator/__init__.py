"""The evaluator: one path for a candidate (build -> count -> measure -> train -> probe -> metrics).

    from nni_gensynth.evaluator import EvaluationSpec, Evaluator
    evaluator = Evaluator(EvaluationSpec(builder="mobilenetv2", image_size=32, channels=3,
                                         hw_profiles=("host-cpu", "host-tflite")))
    evaluator.measure(parameters)      # counts, then each profile, before any training
    evaluator.evaluate(parameters)     # what a trial reports

spec: the frozen settings and their command-line form; pipeline: the Evaluator.
"""
from __future__ import annotations

from .pipeline import Evaluator
from .spec import (EvaluationSpec, SpecError, add_spec_arguments, json_object, spec_from_args, spec_from_argv,
                   spec_from_trial_command)

__all__ = ["EvaluationSpec", "Evaluator", "SpecError", "add_spec_arguments", "json_object", "spec_from_args",
           "spec_from_argv", "spec_from_trial_command"]
