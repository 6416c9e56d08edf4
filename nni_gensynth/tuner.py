"""GenSynthTuner: the thin NNI adapter around the GenSynth engine.

The HPO adapter (nas/strategy.py is the NAS one). It validates classArgs in `__init__` (NNI's
config v2 never runs ClassArgsValidators, and an exception escaping `generate_parameters`
kills the dispatcher thread silently), translates NNI calls into `GenSynth.ask/tell`,
guards the engine with a lock (NNI calls `trial_end` from another thread), and saves the
engine's learned state after every result so a killed experiment loses nothing and
`nnictl resume` continues learning.

Experiment YAML::

    tuner:
      name: GenSynth            # after `nnictl algo register --meta nni_gensynth/nni_meta.yml`
      classArgs:
        optimize_mode: maximize
        objective: accuracy
        constraints: {latency_ms: {max: 5.0}}
        hw_profile: host-cpu
"""
from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from nni.tuner import Tuner

from .engine.coverage import unreported_metrics
from .engine.front import parse_objectives
from .engine.gensynth import CycleStats, GenSynth
from .engine.objective import MAXIMIZE, MINIMIZE, Objective, Requirements
from .engine.relative import resolve_relative, split_relative
from .engine.space import Architecture, SearchSpace, SearchSpaceError
from .engine.state import CHECKPOINT_STATE, StateError, load_state_file, save_state_file
from .importing import import_callable
from .screener import BackgroundScreener

_logger = logging.getLogger("nni_gensynth.tuner")

TUNER_STATE_KEY = "tuner"  # the tuner's own part of state.json, beside the engine's
HELD_OUT_PREFIX = "test_"  # metrics of the test split: for reports only, never learned from


class GenSynthTuner(Tuner):
    """GenSynth as an NNI tuner: networks that maximise U subject to measured requirements.

    Args:
        optimize_mode: "maximize" or "minimize" the objective.
        objective: a reported metric key, "default", "netscore" or "netscore_hw".
        constraints: operational requirements, {metric: {"max": x} | {"min": x} | both}; a bound
            may be relative to the prototype ("prototype / 4", "prototype - 0.005"): the tuner
            then evaluates the prototype first (trains, probes, measures it) and resolves them.
        profiler: "module:callable" (or a callable) called as fn(parameters) -> {metric: value}
            to measure hardware metrics *before* training.
        hw_profile: a device profile name from hw_profiles/ or a path, or several comma-separated
            ("host-cpu,host-tflite": the first one's metrics as named, the others' prefixed with
            their backend, litert_latency_ms); without `profiler`, the tuner measures each
            candidate on those devices before training, built as the trial builds it.
        prototype: a parameter dict to start the generator from (θ_G centred on it), or the name
            of a registered prototype ("mobilenetv2", "resnet18") or "module:function" giving one.
        evaluation: how candidates are built and trained (EvaluationSpec settings: builder,
            image_size, channels, data, epochs, ...). Default: read from the experiment's trial
            command when it runs `python -m nni_gensynth.trial`, so the tuner's screening and
            prototype are evaluated exactly as the trials are.
        population_size: results per generator cycle (one Δθ_G per cycle).
        seed: makes the search reproducible.
        max_profiler_calls: device measurements allowed per proposed trial, on average.
        probing: learn from the probe responses trials report (metric key "responses"), e.g.
            move widths toward the channels that carry importance; False for the ablation.
        objectives: multi-objective mode instead of one U: two or three metrics, each maximised
            or minimised ([{accuracy: max}, {latency_ms: min}]); the search grows the
            hypervolume of the feasible front (engine/front.py); `objective` is then unused.
        reference: the hypervolume's reference point, {metric: value} per objective (default:
            the requirement's bound on that metric, else the front's nadir less 10% of its range).
        screen_ahead: background threads that keep idle measurement devices busy with the
            engine's next candidates (screener.py); 0 (default) measures only what proposals
            need. For device pools: at most the pool's size less one.
    """

    def __init__(self, optimize_mode: str = MAXIMIZE, objective: str = "default",
                 constraints: Optional[Mapping[str, Any]] = None,
                 profiler: Union[str, Callable[[dict], Mapping[str, float]], None] = None,
                 hw_profile: Optional[str] = None, prototype: Union[Mapping[str, Any], str, None] = None,
                 evaluation: Optional[Mapping[str, Any]] = None,
                 population_size: int = 10, seed: Optional[int] = None, max_profiler_calls: int = 4,
                 probing: bool = True, objectives: Optional[Any] = None,
                 reference: Optional[Mapping[str, Any]] = None, screen_ahead: int = 0) -> None:
        super().__init__()
        try:
            self._configure(optimize_mode, objective, constraints, profiler, hw_profile, prototype, evaluation,
                            population_size, seed, max_profiler_calls, probing)
            self._configure_objectives(objectives, reference)
            self._configure_screening(screen_ahead)
        except (TypeError, ValueError) as exc:
            _report_fatal_to_nni(f"GenSynth classArgs: {exc}")
            raise
        self._lock = threading.RLock()
        self._engine: Optional[GenSynth] = None
        self._space: Optional[SearchSpace] = None
        self._pending: dict[int, Architecture] = {}
        self._saved_state: Optional[dict] = None
        self._queued_imports: list = []
        self._prototype_result: Optional[dict] = None
        self._warned: set[str] = set()
        self._screener: Optional[BackgroundScreener] = None

    def _configure(self, optimize_mode: str, objective: str, constraints: Optional[Mapping[str, Any]],
                   profiler: Any, hw_profile: Optional[str], prototype: Any, evaluation: Optional[Mapping[str, Any]],
                   population_size: int, seed: Optional[int], max_profiler_calls: int, probing: bool) -> None:
        """Validate classArgs and store them under their own names (errors name the argument)."""
        if optimize_mode not in (MAXIMIZE, MINIMIZE):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not isinstance(objective, str) or not objective:
            raise ValueError(f"objective must be a metric name, 'default', 'netscore' or 'netscore_hw', got {objective!r}")
        try:
            absolute, relative = split_relative(constraints)
            requirements = Requirements(absolute)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"constraints: {exc}" if not str(exc).startswith("constraints") else str(exc)) from None
        _check_int("population_size", population_size, minimum=2)
        _check_int("max_profiler_calls", max_profiler_calls, minimum=1)
        if seed is not None:
            _check_int("seed", seed, minimum=0)
        if not isinstance(probing, bool):
            raise TypeError(f"probing must be true or false, got {probing!r}")
        _refuse_held_out("objective", [objective])
        _refuse_held_out("constraints", [*requirements.metrics, *relative])
        if relative and prototype is None:
            raise ValueError(f"constraints: bounds relative to the prototype ({_relative_text(relative)}) "
                             f"need the prototype classArg")
        self.optimize_mode = optimize_mode
        self.objective = objective
        self.constraints = dict(constraints) if constraints else {}
        self.profiler = profiler
        self.hw_profile = hw_profile
        self.prototype = prototype
        self.evaluation = dict(evaluation) if evaluation is not None else None
        self.population_size = population_size
        self.seed = seed
        self.max_profiler_calls = max_profiler_calls
        self.probing = probing

        self._requirements = requirements
        self._relative = relative
        self._objective = Objective(objective, optimize_mode)
        self._prototype_parameters = _resolve_prototype(prototype)
        self._profiles = _resolve_hw_profile(hw_profile)
        self._spec = _evaluation_spec(evaluation, requirements) if (self._profiles or relative) else None
        if relative and self._spec is not None and not (self._profiles or self._spec.hw_profiles):
            hardware = [m for m in relative if m not in ("accuracy", "params", "macs", "netscore")]
            if hardware:
                raise ValueError(f"constraints[{hardware[0]!r}] is relative to the prototype's measurement, "
                                 f"but neither hw_profile nor the trial's --hw-profile names a device")
        self._profiler_fn = _resolve_profiler(profiler, self._screening_evaluator(requirements))

    def _configure_objectives(self, objectives: Any, reference: Any) -> None:
        """Multi-objective mode (classArgs `objectives`, `reference`); errors name the argument."""
        self.objectives = objectives
        self.reference = dict(reference) if isinstance(reference, Mapping) else reference
        if objectives is None:
            if reference is not None:
                raise ValueError("reference: only used with objectives (multi-objective mode)")
            return
        parsed = parse_objectives(objectives, reference)
        _refuse_held_out("objectives", parsed.metrics)
        self._objective = parsed

    def _configure_screening(self, screen_ahead: Any) -> None:
        _check_int("screen_ahead", screen_ahead, minimum=0)
        if screen_ahead and self._profiler_fn is None:
            raise ValueError("screen_ahead: needs a device to measure on (hw_profile or profiler)")
        if screen_ahead and not (self._requirements or self._relative):
            raise ValueError("screen_ahead: screening needs requirements to screen against (constraints)")
        self.screen_ahead = screen_ahead

    def _screening_evaluator(self, requirements: Requirements) -> Any:
        """The evaluator that measures candidates before training (None without hw_profile)."""
        if not self._profiles or self._spec is None:
            return None
        from .evaluator import Evaluator

        return Evaluator(self._spec.replace(hw_profiles=self._profiles, requirements=requirements.to_config()))

    # -- NNI Tuner API ---------------------------------------------------------------------
    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """Parse the space and (re)build the engine; a resumed state is restored here. With
        requirements relative to the prototype, the prototype is evaluated first (once: a resumed
        experiment reads its result from the checkpoint)."""
        with self._lock:
            try:
                space = SearchSpace(search_space)
            except SearchSpaceError as exc:
                _report_fatal_to_nni(f"GenSynth search space: {exc}")
                raise SearchSpaceError(f"search space: {exc}") from None
            prototype = self._prototype_parameters
            if prototype is not None:
                try:
                    space.from_parameters(prototype)
                except SearchSpaceError as exc:
                    _report_fatal_to_nni(f"GenSynth prototype does not fit the search space: {exc}")
                    raise ValueError(f"prototype does not fit the search space: {exc}") from None
            saved = self._saved_state or {}
            self._restore_tuner_state(saved.get(TUNER_STATE_KEY))
            if self._relative and self._prototype_result is None:
                self._evaluate_prototype()
            self._space = space
            self._engine = GenSynth(space, self._objective, self._requirements, profiler=self._profiler_fn,
                                    prototype=prototype, population_size=self.population_size,
                                    seed=self.seed, max_profiler_calls=self.max_profiler_calls,
                                    use_responses=self.probing, on_cycle=self._on_cycle)
            self._pending.clear()
            if self._saved_state is not None:
                self._load_engine_state(self._saved_state)
                self._saved_state = None
            elif self._prototype_result is not None:
                # the evaluated prototype is the first result both θ_I and θ_G learn from
                self._engine.tell(space.from_parameters(prototype), self._prototype_result)
                self._save()
            queued, self._queued_imports = self._queued_imports, []
            if self.screen_ahead and self._screener is None:
                self._screener = BackgroundScreener(self.screen_ahead, self.parameters_to_screen, self._profiler_fn,
                                                    self.receive_measurement).start()
        if queued:
            self.import_data(queued)

    def _evaluate_prototype(self) -> None:
        """Train, probe and measure the prototype, then resolve the relative requirements from
        its figures. A failure here is fatal: the requirements would be unknown."""
        from .evaluator import Evaluator

        spec = self._spec.replace(requirements={}, hw_profiles=self._profiles or self._spec.hw_profiles)
        _logger.info("evaluating the prototype to resolve requirements relative to it: %s",
                     _relative_text(self._relative))
        try:
            result = Evaluator(spec).evaluate(self._prototype_parameters, progress=False, stop_when_broken=False)
            resolved = resolve_relative(self.constraints, result)
            requirements = Requirements(resolved)
        except Exception as exc:
            _report_fatal_to_nni(f"GenSynth could not evaluate the prototype: {type(exc).__name__}: {exc}")
            raise
        self._set_prototype_result(result, requirements)
        _logger.info("prototype: accuracy %s, params %s, MACs %s, latency_ms %s; requirements now %r",
                     result.get("accuracy"), result.get("params"), result.get("macs"), result.get("latency_ms"),
                     requirements)

    def _set_prototype_result(self, result: dict, requirements: Requirements) -> None:
        self._prototype_result = dict(result)
        self._requirements = requirements
        if self.profiler is None:
            self._profiler_fn = self._screening_evaluator(requirements)

    def _restore_tuner_state(self, state: Any) -> None:
        """The tuner's own part of a checkpoint: the prototype's result and resolved requirements."""
        if not isinstance(state, Mapping):
            return
        result, resolved = state.get("prototype_result"), state.get("requirements")
        if self._relative and isinstance(result, Mapping) and isinstance(resolved, Mapping):
            try:
                self._set_prototype_result(dict(result), Requirements(resolved))
            except (TypeError, ValueError) as exc:
                _logger.warning("checkpoint's resolved requirements are unusable (%s); evaluating the prototype again",
                                exc)

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        """One parameter set. `GenSynth.ask` never raises: on an internal error it logs and
        proposes a sample of θ_G."""
        with self._lock:
            if self._engine is None or self._space is None:
                raise RuntimeError("GenSynthTuner: generate_parameters called before update_search_space")
            arch = self._engine.ask()
            self._pending[parameter_id] = arch
            self._save()  # the proposal and the advanced RNG survive a kill
            return self._space.to_parameters(arch)

    def generate_multiple_parameters(self, parameter_id_list: list, **kwargs: Any) -> list:
        """As many parameter sets as asked, always (never NoMoreTrialError)."""
        return [self.generate_parameters(pid, **kwargs) for pid in parameter_id_list]

    def receive_trial_result(self, parameter_id: int, parameters: Mapping[str, Any], value: Any,
                             **kwargs: Any) -> None:
        """Teach the engine one result: a scalar, or a dict of metrics with `default`.
        Never raises: a result that cannot be learned from is logged and recorded as failed."""
        with self._lock:
            if self._engine is None or self._space is None:
                _logger.warning("result for %s before the search space; ignored", parameter_id)
                return
            arch = None
            try:
                arch = self._pending.pop(parameter_id, None)
                if arch is None:
                    arch = self._parse(parameters)
                    if arch is None:
                        return
                self._engine.tell(arch, without_held_out(value))  # validated where it enters; never raises
            except Exception as exc:  # noqa: BLE001 - an escaping exception hangs the experiment
                _logger.error("result of parameter id %s could not be learned (%s: %s); recorded as failed",
                              parameter_id, type(exc).__name__, str(exc)[:200])
                self._record_failure(arch)
            self._warn_unreported()
            self._save()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A trial ended; one that never reported a result is recorded as failed."""
        with self._lock:
            arch = self._pending.pop(parameter_id, None)
            if arch is not None and self._engine is not None:
                _logger.info("trial %s ended (%s) without a final result: recorded as failed",
                             parameter_id, "succeeded" if success else "failed")
                self._record_failure(arch)
                self._save()

    def parameters_to_screen(self, k: int = 1) -> list[dict]:
        """Up to `k` candidates for measurement devices that would otherwise sit idle
        (`GenSynth.to_screen`); each measurement goes back through `receive_measurement`."""
        with self._lock:
            if self._engine is None or self._space is None:
                return []
            return [self._space.to_parameters(arch) for arch in self._engine.to_screen(k)]

    def receive_measurement(self, parameters: Any, measured: Any) -> None:
        """The measurement of candidate `parameters` from `parameters_to_screen` (a dict of
        metrics; None when its device could not measure it). Validated; never raises."""
        with self._lock:
            if self._engine is None or self._space is None:
                return
            arch = self._parse(parameters)
            if arch is not None:
                self._engine.add_measurement(arch, measured)
                self._save()

    def import_data(self, data: list) -> None:
        """Learn from earlier results: [{'parameter': {...}, 'value': metric}, ...]."""
        with self._lock:
            if self._engine is None:
                self._queued_imports.extend(data if isinstance(data, list) else [])
                return
            imported = 0
            for entry in data if isinstance(data, list) else []:
                if not isinstance(entry, Mapping) or "parameter" not in entry or "value" not in entry:
                    _logger.warning("import_data: entry without 'parameter' and 'value' skipped: %.200r", entry)
                    continue
                arch = self._parse(entry["parameter"])
                if arch is None or self._engine.knows(arch):
                    continue
                try:
                    self._engine.tell(arch, without_held_out(entry["value"]))
                    imported += 1
                except Exception as exc:  # noqa: BLE001
                    _logger.error("import_data: an entry could not be learned (%s: %s); skipped",
                                  type(exc).__name__, str(exc)[:200])
            _logger.info("imported %d results", imported)
            if imported:
                self._save()

    # -- checkpointing ---------------------------------------------------------------------
    def state_path(self) -> Optional[Path]:
        """Where the learned state is saved (inside NNI's checkpoint directory)."""
        base = self.get_checkpoint_path()
        return Path(base, CHECKPOINT_STATE) if base else None

    def save_checkpoint(self) -> None:
        with self._lock:
            self._save()

    def load_checkpoint(self) -> None:
        """Restore the learned state (NNI calls this on `nnictl resume`). A damaged file is kept
        beside it and the search resumes from what can be read, or from scratch."""
        path = self.state_path()
        state = load_state_file(path) if path is not None else None
        if state is None:
            _logger.info("no usable GenSynth checkpoint to resume from")
            return
        with self._lock:
            if self._engine is None:
                self._saved_state = state
            else:
                self._load_engine_state(state)

    def _load_engine_state(self, state: Mapping[str, Any]) -> None:
        try:
            self._engine.load_state_dict(state)
            _logger.info("resumed GenSynth state: %d results, %d cycles",
                         len(self._engine.records), len(self._engine.cycles))
        except StateError as exc:
            _logger.warning("checkpoint holds nothing usable (%s); starting fresh", exc)

    def _save(self) -> None:
        """Write the learned state (engine and tuner parts); never raises into NNI."""
        path = self.state_path()
        if path is None or self._engine is None:
            return
        try:
            state = self._engine.state_dict()
            state[TUNER_STATE_KEY] = {
                "requirements": self._requirements.to_config(),
                "constraints": self.constraints,
                "prototype": self._prototype_parameters,
                "prototype_result": self._prototype_result,
                "evaluation": self._spec.as_dict() if self._spec is not None else None,
                "objectives": self._objective.describe() if self.objectives is not None else None,
                "reference": self.reference,
            }
        except Exception as exc:  # noqa: BLE001 - saving must never stop the search
            _logger.error("GenSynth state could not be assembled (%s: %s)", type(exc).__name__, exc)
            return
        save_state_file(path, state)

    # -- helpers ---------------------------------------------------------------------------
    @property
    def engine(self) -> Optional[GenSynth]:
        """The GenSynth engine (None until the search space is known)."""
        return self._engine

    @property
    def requirements(self) -> Requirements:
        """The requirements in force (relative ones resolved once the prototype is evaluated)."""
        return self._requirements

    @property
    def prototype_parameters(self) -> Optional[dict]:
        """The prototype's parameter dict (resolved from its name), or None."""
        return dict(self._prototype_parameters) if self._prototype_parameters is not None else None

    @property
    def prototype_result(self) -> Optional[dict]:
        """The evaluated prototype's metrics (None unless requirements are relative to it)."""
        return self._prototype_result

    def _warn_unreported(self) -> None:
        """Warn once per objective or constraint metric that no result or measurement reports
        (checked after 3, 4, 8, 16, ... results: a scan of everything known, kept off the
        per-result path at farm scale)."""
        count = len(self._engine.records) if self._engine is not None else 0
        if count < 3 or (count != 3 and count & (count - 1)):
            return
        try:
            engine = self._engine
            results = [r.metrics for r in engine.records.values() if r.metrics]
            results += list(engine.measurements.values())
            for warning in unreported_metrics(self._objective, self._requirements, results):
                key = warning.split(":", 1)[0]
                if key not in self._warned:
                    self._warned.add(key)
                    _logger.warning("GenSynth: %s", warning)
        except Exception as exc:  # noqa: BLE001 - a diagnostic must never stop the search
            _logger.debug("unreported-metrics check failed: %s", exc)

    def _record_failure(self, arch: Optional[Architecture]) -> None:
        if arch is None or self._engine is None:
            return
        try:
            self._engine.tell(arch, None)
        except Exception as exc:  # noqa: BLE001
            _logger.error("failure of %s could not be recorded (%s)", arch.encode()[:200], exc)

    def _parse(self, parameters: Any) -> Optional[Architecture]:
        try:
            return self._space.from_parameters(parameters)
        except Exception as exc:  # noqa: BLE001 - SearchSpaceError, or anything a hostile value raises
            _logger.warning("parameters outside the search space ignored (%s): %.200r", exc, parameters)
            return None

    def _on_cycle(self, stats: CycleStats) -> None:
        if self.objectives is not None:
            _logger.info("GenSynth cycle %d: hypervolume %s, feasible %.0f%%, entropy %.3f", stats.cycle,
                         stats.hypervolume, 100 * stats.feasible_fraction, stats.entropy)
            return
        _logger.info("GenSynth cycle %d: best U %s, feasible %.0f%%, entropy %.3f", stats.cycle,
                     stats.best_u, 100 * stats.feasible_fraction, stats.entropy)


def _refuse_held_out(argument: str, metrics: Any) -> None:
    """ValueError naming `argument` when one of `metrics` is a test-split metric."""
    held_out = [m for m in metrics if str(m).startswith(HELD_OUT_PREFIX)]
    if held_out:
        raise ValueError(f"{argument}: {held_out[0]!r} is measured on the held-out test split, which the search "
                         f"must never see (selecting on it overstates it); use the validation metric "
                         f"({held_out[0][len(HELD_OUT_PREFIX):]!r})")


def without_held_out(value: Any) -> Any:
    """A reported result without its test-split metrics (test_accuracy, ...): the tuner never
    learns from the test split."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if not (isinstance(k, str) and k.startswith(HELD_OUT_PREFIX))}
    return value


def _report_fatal_to_nni(message: str) -> None:
    """Tell the NNI manager that the tuner cannot run, so the experiment ends in ERROR at once.

    NNI does not notice a dispatcher that dies in the tuner's constructor (it waits 10 s for a
    connection) or while handling the search space (it stays RUNNING forever). Inside a
    dispatcher process we open the tuner command channel and send NNI's Error command; the
    manager then logs "Dispatcher error: <message>" and sets the experiment to ERROR.
    Outside NNI this does nothing.
    """
    url = os.environ.get("NNI_TUNER_COMMAND_CHANNEL")
    _logger.error("%s", message)
    if not url or url.startswith("ws://_unittest_"):
        return
    try:
        from nni.runtime.tuner_command_channel import TunerCommandChannel
        from nni.runtime.tuner_command_channel.command_type import CommandType

        channel = TunerCommandChannel(url)
        channel.connect()
        channel._send(CommandType.Error, message)
        channel.disconnect()
    except Exception:  # noqa: BLE001 - best effort; the exception we are about to raise still stands
        _logger.exception("could not report the error to the NNI manager")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _resolve_hw_profile(hw_profile: Optional[str]) -> tuple[str, ...]:
    """Profile names or paths from the hw_profile classArg, each checked to load."""
    if hw_profile is None:
        return ()
    if not isinstance(hw_profile, str) or not hw_profile.strip():
        raise TypeError(f"hw_profile must be a profile name or path (or several, comma-separated), got {hw_profile!r}")
    from .evaluator.spec import split_profiles
    from .hardware.profiles import load_profiles  # lazy: torch-free, but not needed without a profile

    try:
        names = split_profiles(hw_profile)
        if not names:
            raise ValueError(f"names no profile: {hw_profile!r}")
        load_profiles(list(names))
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"hw_profile: {exc}") from None
    return names


def _resolve_prototype(prototype: Any) -> Optional[dict]:
    """The prototype's parameter dict: as given, or from a registered prototype name
    ("mobilenetv2") or "module:function"."""
    if prototype is None:
        return None
    if isinstance(prototype, Mapping):
        return dict(prototype)
    if isinstance(prototype, str) and prototype:
        from .models import prototype_parameters

        try:
            return prototype_parameters(prototype)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"prototype: {exc}") from None
    raise TypeError(f"prototype must be a parameter dict, a prototype name or 'module:function', "
                    f"got {type(prototype).__name__}")


def _evaluation_spec(evaluation: Optional[Mapping[str, Any]], requirements: Requirements) -> Any:
    """How candidates are built and trained: the `evaluation` classArg, else the experiment's
    trial command (when it runs nni_gensynth.trial), else the defaults."""
    from .evaluator import EvaluationSpec, spec_from_trial_command

    if evaluation is not None:
        return EvaluationSpec.from_dict(evaluation, where="evaluation: ")
    config = experiment_config()
    spec = spec_from_trial_command(config.get("trialCommand")) if config else None
    if spec is None:
        return EvaluationSpec()
    trial_requirements = Requirements(spec.requirements)
    if trial_requirements and requirements and trial_requirements.to_config() != requirements.to_config():
        _logger.warning("the trial's --constraints %s differ from the tuner's constraints %s: trials report "
                        "'feasible' by theirs, the tuner and the report judge by the tuner's",
                        trial_requirements.to_config(), requirements.to_config())
    return spec


def experiment_config() -> dict:
    """The experiment's configuration as NNI hands it to the dispatcher process (base64 JSON in
    its --exp_params argument); {} outside an NNI dispatcher."""
    argv = sys.argv
    if "--exp_params" not in argv[:-1]:
        return {}
    try:
        config = json.loads(base64.b64decode(argv[argv.index("--exp_params") + 1]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def _relative_text(relative: Mapping[str, Any]) -> str:
    return ", ".join(f"{metric} {bound} {rel.text!r}" for metric, bounds in relative.items()
                     for bound, rel in bounds.items())


def _resolve_profiler(profiler: Union[str, Callable, None], evaluator: Any) -> Optional[Callable]:
    if profiler is None:
        return evaluator
    if callable(profiler):
        return profiler
    return import_callable(profiler, "profiler")
