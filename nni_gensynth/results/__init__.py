"""Reading NNI experiments and showing their results: the report, its plots, and exports.

    from nni_gensynth.results import load_experiment, write_report
    index_html = write_report("o6nz3te7", "results/o6nz3te7")

Modules, one job each: locate (where an experiment lives), rest_source / sqlite_source (read
it), assemble (raw NNI records -> trials), load (pick the source, add GenSynth's cycles),
model (the typed form), analysis (feasibility, Pareto front, summary), plots, html, report,
export (rebuild and export a chosen network).
"""
from __future__ import annotations

from .load import load_experiment
from .locate import ExperimentNotFoundError
from .model import CycleRecord, ExperimentRecord, TrialRecord
from .report import write_report, write_report_for

__all__ = ["CycleRecord", "ExperimentNotFoundError", "ExperimentRecord", "TrialRecord", "load_experiment",
           "write_report", "write_report_for"]
