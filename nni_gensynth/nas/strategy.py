"""GenSynthStrategy: the GenSynth engine behind NNI 3.0's NAS Strategy interface.

    exp = NasExperiment(model_space, evaluator, GenSynthStrategy(
        objective="accuracy", constraints={"latency_ms": {"max": 2.0}},
        hw_profile="host-cpu", input_shape=(1, 1, 16, 16), seed=0))

The search space is the model space's mutables (nni_gensynth.nas.space: categorical, numerical,
nested, constraints honoured). Each request asks the engine for a network; before it is trained
the engine's profiler measures it (nni_gensynth.nas.measure: the frozen module on the hardware
profiles through the evaluator, or the user's profiler) and networks that break the requirements
are not trained. A sample the model space's constraints reject is told to the engine as a failure
and never submitted. Results come back from the execution engine's events: the whole reported
dict from `FinalMetric` (`model.metric` keeps only `default`), failures from `TrainingEnd`, under
a lock, and nothing raises out of a callback (an exception on NNI's callback thread hangs the
experiment): a metric NNI itself cannot store is a logged failure of that model.

State: NNI checkpoints a NAS experiment only at start and at stop and drops models still running
on resume, so the strategy keeps everything itself: `state_dict()` is the engine's learned state
plus the networks in flight (trained again first after a resume), and with `checkpoint` it is also
written after every result, so even a killed experiment resumes what it learned.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

from nni.mutable import SampleValidationError
from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy.base import Strategy

from ..constraints import Choice, Flag, Integer, Nullable, Record, Text
from ..engine import GenSynth, Objective, Requirements
from ..engine.gensynth import CycleStats
from ..engine.metrics import finite_float, short_repr
from ..engine.space import Architecture
from ..engine.state import StateError, load_state_file, save_state_file
from ..importing import import_callable
from .measure import ModelMeasurer
from .space import NasSearchSpace

_logger = logging.getLogger("nni_gensynth.nas")

STATE_VERSION = 1

# One rule per plain argument (nni_gensynth.constraints): a bad value names the argument.
ARGUMENT_TABLE = {
    "objective": Text(max_len=128),
    "optimize_mode": Choice(("maximize", "minimize")),
    "population_size": Integer(2, 100_000),
    "seed": Nullable(Integer(0, 2 ** 32 - 1)),
    "max_profiler_calls": Integer(1, 10_000),
    "probing": Flag(),
    "max_rejections": Integer(1, 10_000_000),
    "use_cache": Flag(),
}


def storable_by_nni(metric: Any) -> bool:
    """Whether NNI can keep `metric` as a model's metric: a finite number, or a dict whose
    `default` is one (anything else makes NNI raise on its callback thread)."""
    if isinstance(metric, Mapping):
        metric = metric.get("default")
    return finite_float(metric) is not None


@dataclass
class _InFlight:
    """A submitted model and the engine's point it came from."""

    model: ExecutableModelSpace
    arch: Architecture
    reported: bool = False


class GenSynthStrategy(Strategy):
    """GenSynth as an NNI NAS strategy (see the module doc).

    Args:
        objective: a reported metric key, "default", "netscore" or "netscore_hw".
        optimize_mode: "maximize" or "minimize" the objective.
        constraints: operational requirements, {metric: {"max": x} | {"min": x} | both}, judged on
            the measurements before training and on what trials report.
        hw_profile: hardware profile names or paths (a list, or comma-separated) to measure every
            network on before it is trained; needs `input_shape`.
        input_shape: the networks' input with a batch dimension, e.g. (1, 1, 16, 16).
        profiler: instead of `hw_profile`, `fn(sample) -> {metric: value}` (or "module:callable").
        population_size: results per generator cycle (one Δθ_G per cycle).
        seed: makes the search reproducible.
        max_profiler_calls: measurements per proposed network, on average.
        probing: learn from the probe `responses` trials report; False for the ablation.
        checkpoint: a JSON file the learned state is written to after every result and resumed
            from at start (NNI itself saves the state only at start and stop).
        max_rejections: consecutive samples rejected (by the constraints, or measured infeasible)
            after which the search stops.
        use_cache: reuse stored device measurements.
    """

    def __init__(self, *, objective: str = "default", optimize_mode: str = "maximize",
                 constraints: Optional[Mapping[str, Any]] = None,
                 hw_profile: Union[str, Sequence[str], None] = None, input_shape: Optional[Sequence[int]] = None,
                 profiler: Union[str, Callable[[dict], Mapping[str, Any]], None] = None,
                 population_size: int = 10, seed: Optional[int] = None, max_profiler_calls: int = 4,
                 probing: bool = True, checkpoint: Union[str, os.PathLike, None] = None,
                 max_rejections: int = 1000, use_cache: bool = True) -> None:
        super().__init__()
        arguments = dict(objective=objective, optimize_mode=optimize_mode, population_size=population_size,
                         seed=seed, max_profiler_calls=max_profiler_calls, probing=probing,
                         max_rejections=max_rejections, use_cache=use_cache)
        Record(ARGUMENT_TABLE).check(arguments, "")  # FieldError (a ValueError) naming the argument
        try:
            self._requirements = Requirements(constraints)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"constraints: {exc}") from None
        for name, value in arguments.items():
            setattr(self, name, value)
        self.constraints = dict(constraints) if constraints else {}
        self.hw_profile = hw_profile
        self.input_shape = input_shape
        self.profiler = profiler
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._objective = Objective(objective, optimize_mode)
        self._measurer = ModelMeasurer(self._requirements, hw_profile, input_shape,
                                       import_callable(profiler, "profiler") if isinstance(profiler, str) else profiler,
                                       use_cache=use_cache)
        self._lock = threading.RLock()
        self._gensynth: Optional[GenSynth] = None
        self._space: Optional[NasSearchSpace] = None
        self._in_flight: dict[int, _InFlight] = {}
        self._resubmit: list[Architecture] = []
        self._finished: list[tuple[ExecutableModelSpace, Architecture]] = []
        self._results = 0  # results told to the engine, failures included
        self._submitted = 0
        self._rejected = 0
        self._rejected_in_row = 0

    def extra_repr(self) -> str:
        return (f"objective={self.objective!r}, optimize_mode={self.optimize_mode!r}, "
                f"constraints={self.constraints!r}, hw_profile={self.hw_profile!r}, seed={self.seed!r}")

    # -- NNI Strategy interface ------------------------------------------------------------------
    def _initialize(self, model_space: ExecutableModelSpace, engine: ExecutionEngine) -> ExecutableModelSpace:
        self._space = NasSearchSpace(model_space)
        self._measurer.bind(self._space)
        self._gensynth = GenSynth(self._space.space, self._objective, self._requirements,
                                  profiler=self._profile if self._measurer.enabled else None,
                                  population_size=self.population_size, seed=self.seed,
                                  max_profiler_calls=self.max_profiler_calls, use_responses=self.probing,
                                  on_cycle=_log_cycle)
        _logger.info("GenSynth over %d decisions from %d mutables (%s)", len(self._space.space.all_decisions),
                     len(self._space.model_labels), ", ".join(self._space.spec))
        if self.checkpoint is not None:
            saved = load_state_file(self.checkpoint)
            if saved is not None:
                self.load_state_dict(saved)
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        engine.register_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)
        return model_space

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        self.engine.unregister_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)

    def _run(self) -> None:
        while self.wait_for_resource():
            with self._lock:
                model = self._next_model()
            if model is None:
                break
            self.engine.submit_models(model)
        with self._lock:
            running = [flight.model for flight in self._in_flight.values()]
        if running:
            self.engine.wait_models(*running)  # their results still teach the engine

    # -- choosing ----------------------------------------------------------------------------
    def _next_model(self) -> Optional[ExecutableModelSpace]:
        """The next frozen model to train (a resumed one first), or None to stop the search."""
        while True:
            if self._resubmit:
                arch = self._resubmit.pop(0)
            else:
                arch = self._gensynth.ask()
                if self._gensynth.knows(arch):
                    _logger.info("every network of the search space has been proposed; the search stops")
                    return None
            model = self._freeze(arch)
            if model is not None:
                self._rejected_in_row = 0
                self._in_flight[id(model)] = _InFlight(model, arch)
                self._submitted += 1
                return model
            self._rejected += 1
            self._rejected_in_row += 1
            if self._rejected_in_row >= self.max_rejections:
                _logger.warning("%d samples in a row were rejected (constraints, or measured infeasible); "
                                "the search stops", self._rejected_in_row)
                return None

    def _freeze(self, arch: Architecture) -> Optional[ExecutableModelSpace]:
        """The frozen model of `arch`, or None (told to the engine as a failure) when the model
        space's constraints reject its sample or its measurement breaks the requirements."""
        sample = self._space.to_sample(arch)
        try:
            model = self.model_space.freeze(sample)
        except SampleValidationError as exc:
            _logger.info("sample rejected by the model space (%s): %s", short_repr(str(exc)), sample)
            self._tell(arch, None)
            return None
        if self._measurer.enabled:
            measured = self._gensynth.measure(arch)
            if measured is not None and self._measurer.broken(measured):
                _logger.info("measured %s, which breaks %r: not trained", measured, self._requirements)
                self._tell(arch, None)
                return None
        return model

    def _profile(self, parameters: dict) -> Mapping[str, Any]:
        """The engine's profiler: measurements of the network `parameters` describe ({} when the
        model space's constraints reject it: it is then rejected, untrained, when proposed)."""
        sample = self._space.to_sample(parameters)
        used = self._space.read(sample)
        if used is None:
            return {}
        return self._measurer.measure(sample, used, lambda: self.model_space.freeze(sample).executable_model())

    # -- results (NNI's callback threads) --------------------------------------------------------
    def _on_final_metric(self, event: FinalMetricEvent) -> None:
        try:
            with self._lock:
                flight = self._flight(event.model)
                if flight is None:
                    return
                if not storable_by_nni(event.metric):
                    event.prevent_default()  # NNI would raise storing it: the model just has no metric
                    _logger.warning("model %s reported %s: no finite 'default'", event.model, short_repr(event.metric))
                flight.reported = True
                self._tell(flight.arch, event.metric)
        except Exception:  # noqa: BLE001 - an exception here would hang the experiment
            _logger.exception("GenSynth could not learn from a final metric; ignored")

    def _on_training_end(self, event: TrainingEndEvent) -> None:
        try:
            with self._lock:
                flight = self._flight(event.model)
                if flight is None:
                    return
                del self._in_flight[id(event.model)]
                if not flight.reported and event.status == ModelStatus.Interrupted:
                    _logger.info("training interrupted: the network is trained again when the search resumes")
                    self._resubmit.append(flight.arch)  # not the network's failure
                    return
                if not flight.reported:
                    _logger.info("model ended (%s) without a final metric: recorded as failed", event.status)
                    self._tell(flight.arch, None)
                self._finished.append((flight.model, flight.arch))
        except Exception:  # noqa: BLE001 - an exception here would hang the experiment
            _logger.exception("GenSynth could not learn from the end of a training; ignored")

    def _flight(self, model: ExecutableModelSpace) -> Optional[_InFlight]:
        flight = self._in_flight.get(id(model))
        return flight if flight is not None and flight.model is model else None

    def _tell(self, arch: Architecture, metrics: Any) -> None:
        """One result (None: a failure) to the engine, then the checkpoint."""
        self._gensynth.tell(arch, metrics)
        self._results += 1
        if self.checkpoint is not None:
            save_state_file(self.checkpoint, self._state())

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The learned state as JSON data: the engine's state, the networks in flight, counters."""
        with self._lock:
            return self._state()

    def _state(self) -> dict:
        if self._gensynth is None:
            return {"version": STATE_VERSION}
        in_flight = [f.arch for f in self._in_flight.values()] + self._resubmit
        return {
            "version": STATE_VERSION,
            "engine": self._gensynth.state_dict(),
            "in_flight": [self._space.space.to_parameters(a) for a in in_flight],
            "results": self._results,
            "submitted": self._submitted,
            "rejected": self._rejected,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from `state_dict()` output; networks in flight then are trained first. A state
        older than the one already loaded (NNI's start-time checkpoint after a kill) is ignored;
        a damaged one is logged and the search starts fresh. Never raises."""
        with self._lock:
            try:
                self._load(state_dict)
            except Exception as exc:  # noqa: BLE001 - a bad checkpoint must not stop the experiment
                _logger.warning("GenSynth state could not be restored (%s: %s); starting fresh",
                                type(exc).__name__, short_repr(str(exc)))

    def _load(self, state: Any) -> None:
        if self._gensynth is None:
            raise StateError("the strategy is not initialized (load_state_dict comes after initialize)")
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION or "engine" not in state:
            raise StateError(f"not a GenSynthStrategy state: {short_repr(state)}")
        results = _count(state.get("results"))
        if results < self._results:
            _logger.info("a state with %d results is older than the one loaded (%d); ignored", results, self._results)
            return
        self._gensynth.load_state_dict(state["engine"])
        self._resubmit = []
        for parameters in state.get("in_flight") or []:
            try:
                arch = self._space.space.from_parameters(parameters)
            except Exception:  # noqa: BLE001 - one damaged entry must not lose the others
                continue
            if not self._gensynth.knows(arch):
                self._resubmit.append(arch)
        self._results, self._submitted, self._rejected = results, _count(state.get("submitted")), \
            _count(state.get("rejected"))
        _logger.info("resumed GenSynth state: %d results, %d cycles, %d networks to train again",
                     len(self._gensynth.records), len(self._gensynth.cycles), len(self._resubmit))

    # -- results for the user ------------------------------------------------------------------
    @property
    def gensynth(self) -> Optional[GenSynth]:
        """The GenSynth engine (None before the strategy is initialized)."""
        return self._gensynth

    @property
    def search_space(self) -> Optional[NasSearchSpace]:
        """The model space as the engine's search space (None before initialization)."""
        return self._space

    def best(self, k: int = 5) -> list[dict]:
        """The k best trained networks that meet the requirements, best first: their NNI
        `sample` and `metrics` (reported and measured)."""
        with self._lock:
            if self._gensynth is None:
                return []
            return [{"sample": self._space.to_sample(r.arch), "metrics": dict(r.metrics or {})}
                    for r in self._gensynth.best(k)]

    def generate(self, n: int) -> list[dict]:
        """Up to n distinct samples from the taught generator, each accepted by the model space's
        constraints and meeting the requirements by measurement (see GenSynth.generate)."""
        with self._lock:
            if self._gensynth is None:
                raise RuntimeError("the strategy has not been initialized with a model space")
            valid: list[dict] = []
            for asked in (n, 2 * n, 4 * n):  # the engine does not know the constraints: ask for more
                samples = [self._space.to_sample(arch) for arch in self._gensynth.generate(asked)]
                valid = [s for s in samples if self._space.read(s) is not None]
                if len(valid) >= n:
                    break
            return valid[:n]

    def list_models(self, sort: bool = True, limit: Optional[int] = None) -> Iterator[ExecutableModelSpace]:
        """With `sort`, the trained models GenSynth judged, feasible ones first, by U (what
        `export_top_models` returns); else every model, as NNI lists them."""
        if not sort:
            yield from super().list_models(sort=False, limit=limit)
            return
        with self._lock:
            records = dict(self._gensynth.records) if self._gensynth is not None else {}
            judged = [(model, records[arch]) for model, arch in self._finished
                      if arch in records and records[arch].score is not None]
        judged.sort(key=lambda mr: (not mr[1].feasible, -mr[1].score))
        for model, _ in judged[:limit]:
            yield model


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _log_cycle(stats: CycleStats) -> None:
    _logger.info("GenSynth cycle %d: best U %s, feasible %.0f%%, entropy %.3f, %d profiler calls", stats.cycle,
                 stats.best_u, 100 * stats.feasible_fraction, stats.entropy, stats.profiler_calls)
