"""GenSynthTuner: the thin NNI adapter around the GenSynth engine.

This is the only module that imports NNI. It validates classArgs in `__init__` (NNI's
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

import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np
from nni.tuner import Tuner

from .engine.gensynth import CycleStats, GenSynth
from .engine.objective import MAXIMIZE, MINIMIZE, Objective, Requirements
from .engine.space import Architecture, SearchSpace, SearchSpaceError
from .importing import import_callable

_logger = logging.getLogger("nni_gensynth.tuner")

STATE_DIR = "gensynth"
STATE_FILE = "state.json"


class GenSynthTuner(Tuner):
    """GenSynth as an NNI tuner: networks that maximise U subject to measured requirements.

    Args:
        optimize_mode: "maximize" or "minimize" the objective.
        objective: a reported metric key, "default", "netscore" or "netscore_hw".
        constraints: operational requirements, {metric: {"max": x} | {"min": x} | both}.
        profiler: "module:callable" (or a callable) called as fn(parameters) -> {metric: value}
            to measure hardware metrics *before* training.
        hw_profile: a device profile name from hw_profiles/ or a path, or several comma-separated
            ("host-cpu,host-tflite": the first one's metrics as named, the others' prefixed with
            their backend, litert_latency_ms); without `profiler`, the tuner measures each
            candidate on those devices before training (model space only).
        prototype: a parameter dict to start the generator from (θ_G centred on it).
        population_size: results per generator cycle (one Δθ_G per cycle).
        seed: makes the search reproducible.
        max_profiler_calls: device measurements allowed per proposed trial, on average.
        probing: learn from the probe responses trials report (metric key "responses"), e.g.
            move widths toward the channels that carry importance; False for the ablation.
    """

    def __init__(self, optimize_mode: str = MAXIMIZE, objective: str = "default",
                 constraints: Optional[Mapping[str, Any]] = None,
                 profiler: Union[str, Callable[[dict], Mapping[str, float]], None] = None,
                 hw_profile: Optional[str] = None, prototype: Optional[Mapping[str, Any]] = None,
                 population_size: int = 10, seed: Optional[int] = None, max_profiler_calls: int = 4,
                 probing: bool = True) -> None:
        super().__init__()
        try:
            self._configure(optimize_mode, objective, constraints, profiler, hw_profile, prototype,
                            population_size, seed, max_profiler_calls, probing)
        except (TypeError, ValueError) as exc:
            _report_fatal_to_nni(f"GenSynth classArgs: {exc}")
            raise
        self._lock = threading.RLock()
        self._engine: Optional[GenSynth] = None
        self._space: Optional[SearchSpace] = None
        self._pending: dict[int, Architecture] = {}
        self._saved_state: Optional[dict] = None
        self._queued_imports: list = []
        self._fallback_rng = np.random.default_rng(seed)

    def _configure(self, optimize_mode: str, objective: str, constraints: Optional[Mapping[str, Any]],
                   profiler: Any, hw_profile: Optional[str], prototype: Optional[Mapping[str, Any]],
                   population_size: int, seed: Optional[int], max_profiler_calls: int, probing: bool) -> None:
        """Validate classArgs and store them under their own names (errors name the argument)."""
        if optimize_mode not in (MAXIMIZE, MINIMIZE):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not isinstance(objective, str) or not objective:
            raise ValueError(f"objective must be a metric name, 'default', 'netscore' or 'netscore_hw', got {objective!r}")
        try:
            requirements = Requirements(constraints)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"constraints: {exc}") from None
        _check_int("population_size", population_size, minimum=2)
        _check_int("max_profiler_calls", max_profiler_calls, minimum=1)
        if seed is not None:
            _check_int("seed", seed, minimum=0)
        if not isinstance(probing, bool):
            raise TypeError(f"probing must be true or false, got {probing!r}")
        if prototype is not None and not isinstance(prototype, Mapping):
            raise TypeError(f"prototype must be a parameter dict, got {type(prototype).__name__}")
        self.optimize_mode = optimize_mode
        self.objective = objective
        self.constraints = requirements.to_config()
        self.profiler = profiler
        self.hw_profile = hw_profile
        self.prototype = dict(prototype) if prototype is not None else None
        self.population_size = population_size
        self.seed = seed
        self.max_profiler_calls = max_profiler_calls
        self.probing = probing

        self._requirements = requirements
        self._objective = Objective(objective, optimize_mode)
        self._profile = _resolve_hw_profile(hw_profile)
        self._profiler_fn = _resolve_profiler(profiler, self._profile)

    # -- NNI Tuner API ---------------------------------------------------------------------
    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """Parse the space and (re)build the engine; a resumed state is restored here."""
        with self._lock:
            try:
                space = SearchSpace(search_space)
            except SearchSpaceError as exc:
                _report_fatal_to_nni(f"GenSynth search space: {exc}")
                raise SearchSpaceError(f"search space: {exc}") from None
            if self.prototype is not None:
                try:
                    space.from_parameters(self.prototype)
                except SearchSpaceError as exc:
                    _report_fatal_to_nni(f"GenSynth prototype does not fit the search space: {exc}")
                    raise ValueError(f"prototype does not fit the search space: {exc}") from None
            self._space = space
            self._engine = GenSynth(space, self._objective, self._requirements, profiler=self._profiler_fn,
                                    prototype=self.prototype, population_size=self.population_size,
                                    seed=self.seed, max_profiler_calls=self.max_profiler_calls,
                                    use_responses=self.probing, on_cycle=self._on_cycle)
            self._pending.clear()
            if self._saved_state is not None:
                try:
                    self._engine.load_state_dict(self._saved_state)
                    _logger.info("resumed GenSynth state: %d results, %d cycles",
                                 len(self._engine.records), len(self._engine.cycles))
                except (ValueError, KeyError, SearchSpaceError) as exc:
                    _logger.warning("checkpoint does not fit the search space (%s); starting fresh", exc)
                self._saved_state = None
            queued, self._queued_imports = self._queued_imports, []
        if queued:
            self.import_data(queued)

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        """One parameter set. Never raises: on an internal error it logs and samples θ_G."""
        with self._lock:
            if self._engine is None or self._space is None:
                raise RuntimeError("GenSynthTuner: generate_parameters called before update_search_space")
            try:
                arch = self._engine.ask()
            except Exception:  # noqa: BLE001 - an escaping exception would hang the experiment
                _logger.exception("GenSynth engine failed to propose; falling back to a generator sample")
                arch = self._fallback_sample()
            self._pending[parameter_id] = arch
            self._save()  # the proposal and the advanced RNG survive a kill
            return self._space.to_parameters(arch)

    def generate_multiple_parameters(self, parameter_id_list: list, **kwargs: Any) -> list:
        """As many parameter sets as asked, always (never NoMoreTrialError)."""
        return [self.generate_parameters(pid, **kwargs) for pid in parameter_id_list]

    def receive_trial_result(self, parameter_id: int, parameters: Mapping[str, Any], value: Any,
                             **kwargs: Any) -> None:
        """Teach the engine one result: a scalar, or a dict of metrics with `default`."""
        with self._lock:
            if self._engine is None or self._space is None:
                _logger.warning("result for %s before the search space; ignored", parameter_id)
                return
            arch = self._pending.pop(parameter_id, None)
            if arch is None:
                arch = self._parse(parameters)
                if arch is None:
                    return
            self._engine.tell(arch, metrics_of(value))
            self._save()

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A trial ended; one that never reported a result is recorded as failed."""
        with self._lock:
            arch = self._pending.pop(parameter_id, None)
            if arch is not None and self._engine is not None:
                _logger.info("trial %s ended (%s) without a final result: recorded as failed",
                             parameter_id, "succeeded" if success else "failed")
                self._engine.tell(arch, None)
                self._save()

    def import_data(self, data: list) -> None:
        """Learn from earlier results: [{'parameter': {...}, 'value': metric}, ...]."""
        with self._lock:
            if self._engine is None:
                self._queued_imports.extend(data)
                return
            imported = 0
            for entry in data:
                if not isinstance(entry, Mapping) or "parameter" not in entry or "value" not in entry:
                    _logger.warning("import_data: entry without 'parameter' and 'value' skipped: %r", entry)
                    continue
                arch = self._parse(entry["parameter"])
                if arch is None or self._engine.knows(arch):
                    continue
                self._engine.tell(arch, metrics_of(entry["value"]))
                imported += 1
            _logger.info("imported %d results", imported)
            if imported:
                self._save()

    # -- checkpointing ---------------------------------------------------------------------
    def state_path(self) -> Optional[Path]:
        """Where the learned state is saved (inside NNI's checkpoint directory)."""
        base = self.get_checkpoint_path()
        return Path(base, STATE_DIR, STATE_FILE) if base else None

    def save_checkpoint(self) -> None:
        with self._lock:
            self._save()

    def load_checkpoint(self) -> None:
        """Restore the engine's learned state (NNI calls this on `nnictl resume`)."""
        path = self.state_path()
        if path is None or not path.exists():
            _logger.info("no GenSynth checkpoint to resume from")
            return
        state = json.loads(path.read_text(encoding="utf-8"))
        with self._lock:
            if self._engine is None:
                self._saved_state = state
            else:
                self._engine.load_state_dict(state)

    def _save(self) -> None:
        path = self.state_path()
        if path is None or self._engine is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._engine.state_dict(), default=_json_default), encoding="utf-8")
        os.replace(tmp, path)

    # -- helpers ---------------------------------------------------------------------------
    @property
    def engine(self) -> Optional[GenSynth]:
        """The GenSynth engine (None until the search space is known)."""
        return self._engine

    def _parse(self, parameters: Mapping[str, Any]) -> Optional[Architecture]:
        try:
            return self._space.from_parameters(parameters)
        except SearchSpaceError as exc:
            _logger.warning("parameters outside the search space ignored (%s): %r", exc, parameters)
            return None

    def _fallback_sample(self) -> Architecture:
        try:
            return self._engine.generator.sample(self._fallback_rng)
        except Exception:  # noqa: BLE001
            _logger.exception("generator sample failed; proposing the first option of every decision")
            values: dict = {}
            for d in self._space.active(values):
                values[d.key] = 0 if hasattr(d, "options") else d.from_unit(0.5)
            return self._space.make(list(values.items()))

    def _on_cycle(self, stats: CycleStats) -> None:
        _logger.info("GenSynth cycle %d: best U %s, feasible %.0f%%, entropy %.3f", stats.cycle,
                     stats.best_u, 100 * stats.feasible_fraction, stats.entropy)


def metrics_of(value: Any) -> Optional[dict]:
    """A metric dict from what a trial reported (a number, or a dict with 'default');
    None for a result that carries nothing usable (NaN, None, wrong type)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return {"default": float(value)}
    return None


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


def _resolve_hw_profile(hw_profile: Optional[str]) -> Any:
    if hw_profile is None:
        return None
    if not isinstance(hw_profile, str) or not hw_profile:
        raise TypeError(f"hw_profile must be a profile name or path, got {hw_profile!r}")
    from .hardware.profiles import load_profiles  # lazy: torch-free, but not needed without a profile

    try:
        return load_profiles(hw_profile)
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"hw_profile: {exc}") from None


def _resolve_profiler(profiler: Union[str, Callable, None], profile: Any) -> Optional[Callable]:
    if profiler is None:
        if profile is None:
            return None
        from .hardware.profiler import ModelProfiler

        return ModelProfiler(profile)
    if callable(profiler):
        return profiler
    return import_callable(profiler, "profiler")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
