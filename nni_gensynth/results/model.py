"""The typed in-memory form of one NNI experiment, whichever source it was read from.

`ExperimentRecord` holds the experiment's configuration (and from it the tuner's requirements
and objective), every trial with its parameters, status and metrics, and the generator cycles
GenSynth saved in its state file. Sources (`rest_source`, `sqlite_source`) build it;
`analysis`, `plots`, `html` and `export` only read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..engine.metrics import finite_float
from ..engine.objective import MAXIMIZE, Objective, Requirements


@dataclass
class TrialRecord:
    """One NNI trial job.

    `parameter_id` and `parameters` are those the trial actually ran: NNI 3.0's local
    training service may hand a trial another parameter set than the one its RUNNING event
    names, so the sources take the parameter id the trial reported its metrics under.
    `final` is the final result as a dict (a scalar result becomes {"default": x}).
    """

    trial_id: str
    status: str
    parameter_id: Optional[int] = None
    parameters: dict[str, Any] = field(default_factory=dict)
    final: Optional[dict[str, Any]] = None
    intermediate: list[dict[str, Any]] = field(default_factory=list)
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None
    trial_dir: Optional[Path] = None

    def metric(self, name: str) -> Optional[float]:
        """A final metric as a finite float, or None when absent or not a number (10**400 and
        NaN included: a trial may report anything JSON holds)."""
        if self.final is None:
            return None
        return finite_float(self.final.get(name))


@dataclass
class CycleRecord:
    """One generator cycle as GenSynth logged it (see engine.gensynth.CycleStats)."""

    cycle: int
    results: int
    best_u: Optional[float]
    feasible_fraction: float
    entropy: float
    delta_norm: float = 0.0
    profiler_calls: int = 0
    seconds: float = 0.0
    trust: dict[str, float] = field(default_factory=dict)  # probe trust per decision kind
    hypervolume: Optional[float] = None  # multi-objective mode: the feasible front's


@dataclass
class ExperimentRecord:
    """One experiment: configuration, trials and generator cycles."""

    experiment_id: str
    source: str  # "rest" (a running NNI manager) or "sqlite" (its database)
    experiment_dir: Optional[Path]
    config: dict[str, Any]
    trials: list[TrialRecord]
    cycles: list[CycleRecord] = field(default_factory=list)
    status: str = "UNKNOWN"
    state_path: Optional[Path] = None
    tuner_state: dict[str, Any] = field(default_factory=dict)  # the tuner's part of its state file

    @property
    def name(self) -> str:
        return str(self.config.get("experimentName") or "")

    @property
    def tuner(self) -> dict[str, Any]:
        """The tuner section of the config ({} when the experiment has none)."""
        tuner = self.config.get("tuner")
        return tuner if isinstance(tuner, dict) else {}

    @property
    def tuner_name(self) -> str:
        return str(self.tuner.get("name") or self.tuner.get("className") or "")

    @property
    def class_args(self) -> dict[str, Any]:
        args = self.tuner.get("classArgs")
        return args if isinstance(args, dict) else {}

    @property
    def constraints(self) -> dict[str, dict[str, float]]:
        """The operational requirements in force, normalised (see `requirements`)."""
        return self.requirements.to_config()

    @property
    def requirements(self) -> Requirements:
        """The requirements the experiment was judged by: the tuner's as it resolved them (its
        state file: bounds relative to the prototype become numbers once the prototype is
        evaluated), else its classArgs constraints (numeric bounds only), else, for a tuner
        without them (a TPE baseline on the same pipeline), the trial command's --constraints."""
        resolved = self.tuner_state.get("requirements")
        if isinstance(resolved, dict) and resolved:
            try:
                return Requirements(resolved)
            except (TypeError, ValueError):
                pass
        constraints = self.class_args.get("constraints")
        if constraints:
            from ..engine.relative import split_relative

            try:
                return Requirements(split_relative(constraints)[0])
            except (TypeError, ValueError):
                return Requirements()
        spec = self.trial_spec
        return Requirements(spec.requirements if spec is not None else {})

    @property
    def trial_spec(self) -> Any:
        """The EvaluationSpec of the trial command when it runs `python -m nni_gensynth.trial`
        (how its networks were built, measured and trained), else None."""
        from ..evaluator.spec import SpecError, spec_from_trial_command

        try:
            return spec_from_trial_command(self.config.get("trialCommand"))
        except SpecError:
            return None

    @property
    def prototype_result(self) -> Optional[dict[str, Any]]:
        """The prototype's metrics when the tuner evaluated it (requirements relative to it)."""
        result = self.tuner_state.get("prototype_result")
        return dict(result) if isinstance(result, dict) else None

    @property
    def objective(self) -> Objective:
        """U as the tuner optimised it (GenSynth's classArgs; 'default', maximize otherwise, and
        for classArgs the tuner itself refused)."""
        try:
            return Objective(str(self.class_args.get("objective") or "default"),
                             str(self.class_args.get("optimize_mode") or MAXIMIZE))
        except (TypeError, ValueError):
            return Objective("default", MAXIMIZE)

    @property
    def objectives(self) -> Any:
        """The objectives of GenSynth's multi-objective mode (engine.front.Objectives), or None."""
        from ..engine.front import ObjectivesError, parse_objectives

        given = self.class_args.get("objectives")
        if given is None:
            return None
        try:
            return parse_objectives(given, self.class_args.get("reference"))
        except (ObjectivesError, TypeError, ValueError):
            return None

    def trial(self, trial_id: str) -> TrialRecord:
        """The trial with this id (ValueError listing the known ids otherwise)."""
        for t in self.trials:
            if t.trial_id == trial_id:
                return t
        known = ", ".join(t.trial_id for t in self.trials) or "none"
        raise ValueError(f"experiment {self.experiment_id} has no trial {trial_id!r} (trials: {known})")
