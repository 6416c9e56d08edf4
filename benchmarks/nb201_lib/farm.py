"""A farm, simulated: W trial workers and D measurement devices around one real tuner.

Time is simulated, the tuner is real. Events (a training ends, a device finishes a measurement)
are taken in time order, and the tuner is driven through the NNI Tuner API exactly as NNI's
dispatcher drives it: one call at a time (`generate_parameters` for a free worker,
`receive_trial_result` + `trial_end` for a finished training). A free worker waits while the tuner
is busy: a suggestion that measures candidates on devices keeps the tuner busy until its last
measurement ends, as NNI's single dispatcher thread is. Accuracy and latency come from the
NAS-Bench-201 table with measured Raspberry Pi 4 latencies; durations come from `FarmModel`.

With `screen_ahead`, a device with nothing to measure takes the tuner's next candidate
(`GenSynthTuner.parameters_to_screen`, asked SCREEN_BATCH per idle device at a time, as the
screener's threads ask) and hands the measurement back when it ends (`receive_measurement`):
device time the searches would not use goes to screening.

The wall time of every suggestion is recorded against the number of results the tuner had then.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from nni_gensynth.screener import SCREEN_BATCH

from .data import Cell, LATENCY_LIMIT_MS, load_table, search_space
from .harness import metrics_for

FARM_PROFILER = "benchmarks.nb201_lib.farm:recorded_latency"
FARM_TUNERS = ("gensynth", "gensynth-ahead", "mf-re")

_measured: list[Cell] = []  # what the tuner measured during the current call (farm profiler)


def recorded_latency(parameters: Mapping[str, object]) -> dict[str, float]:
    """The farm's profiler: the cell's Pi 4 latency, remembered so the simulation can charge a
    device the measurement's duration."""
    cell = load_table().lookup(parameters)
    _measured.append(cell)
    return {"latency_ms": cell.latency_ms}


@dataclass(frozen=True)
class FarmModel:
    """Durations, in simulated seconds. Modelling assumptions, not measurements (the table has no
    training times): a training takes `train_s` for a network of the median latency, scaled by its
    latency (compute) with lognormal jitter; a measurement takes a fixed overhead (export, copy,
    load) plus `timed_runs` inferences."""

    workers: int
    devices: int
    train_s: float = 1800.0
    train_jitter: float = 0.2
    measure_overhead_s: float = 5.0
    timed_runs: int = 60

    def __post_init__(self) -> None:
        if self.workers < 1 or self.devices < 1:
            raise ValueError(f"need at least one worker and one device, got W={self.workers}, D={self.devices}")
        if not (self.train_s > 0 and self.measure_overhead_s >= 0 and self.timed_runs >= 0 and self.train_jitter >= 0):
            raise ValueError(f"durations must be positive: {self}")

    def training_s(self, cell: Cell, median_latency_ms: float, rng: random.Random) -> float:
        return self.train_s * (cell.latency_ms / median_latency_ms) * math.exp(rng.gauss(0.0, self.train_jitter))

    def measuring_s(self, cell: Cell) -> float:
        return self.measure_overhead_s + self.timed_runs * cell.latency_ms / 1000.0


@dataclass
class FarmRun:
    """What one simulated experiment did (per training, in the order the trainings ended)."""

    tuner: str
    seed: int
    workers: int
    devices: int
    trainings: int
    accuracy: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    suggest_ms: list[tuple[int, float]] = field(default_factory=list)  # (results known, wall ms)
    screen_ms: list[tuple[int, float]] = field(default_factory=list)  # screening requests, same
    device_busy_s: float = 0.0
    worker_busy_s: float = 0.0
    makespan_s: float = 0.0
    measurements_in_suggestions: int = 0
    measurements_ahead: int = 0
    wall_s: float = 0.0
    # Screening ahead only: when a device first sat idle because the tuner had nothing left to
    # screen (a finite table runs out), device time busy until then, and distinct cells measured.
    ran_dry_s: Optional[float] = None
    device_busy_before_dry_s: float = 0.0
    distinct_measured_at_dry: Optional[int] = None

    def best_feasible(self, trainings: int, limit_ms: float = LATENCY_LIMIT_MS) -> Optional[float]:
        """Best accuracy of a network within the latency limit among the first `trainings` ended."""
        feasible = [a for a, l in zip(self.accuracy[:trainings], self.latency_ms[:trainings]) if l <= limit_ms]
        return max(feasible) if feasible else None

    def device_utilisation(self) -> float:
        return self.device_busy_s / (self.devices * self.makespan_s) if self.makespan_s > 0 else 0.0

    def worker_utilisation(self) -> float:
        return self.worker_busy_s / (self.workers * self.makespan_s) if self.makespan_s > 0 else 0.0

    def device_utilisation_before_dry(self) -> Optional[float]:
        """Device utilisation while the tuner still had candidates to screen (the whole run if it
        never ran out); None for a run that does not screen ahead."""
        if self.tuner != "gensynth-ahead":
            return None
        if self.ran_dry_s is None:
            return self.device_utilisation()
        return self.device_busy_before_dry_s / (self.devices * self.ran_dry_s) if self.ran_dry_s > 0 else 0.0


def median_ms_at(timings: list[tuple[int, float]], observations: int, window: float = 0.05) -> Optional[float]:
    """Median wall time of the calls in `timings` (results known, ms) made with `observations`
    results known, within ±`window` of it; None when there were none."""
    times = [ms for n, ms in timings if (1 - window) * observations <= n <= (1 + window) * observations]
    return statistics.median(times) if times else None


def make_farm_tuner(name: str, seed: int) -> Any:
    from .tuners import gensynth, measure_first_re
    if name in ("gensynth", "gensynth-ahead"):
        return gensynth(seed, profiler=FARM_PROFILER)
    if name == "mf-re":
        return measure_first_re(seed, profiler=FARM_PROFILER)
    raise ValueError(f"unknown farm tuner {name!r}; choose from {FARM_TUNERS}")


class _Devices:
    """When each device is next free; a measurement takes the one free soonest."""

    def __init__(self, count: int) -> None:
        self.free_at = [0.0] * count
        self.busy_s = 0.0

    def reserve(self, not_before: float, duration: float) -> float:
        """End of a measurement that may start at `not_before`, on the device free soonest."""
        device = min(range(len(self.free_at)), key=lambda d: (max(self.free_at[d], not_before), d))
        start = max(self.free_at[device], not_before)
        self.free_at[device] = start + duration
        self.busy_s += duration
        return start + duration

    def busy_until(self, now: float) -> float:
        """Device seconds spent measuring up to `now` (reservations running past it cut at `now`)."""
        return self.busy_s - sum(max(0.0, free - now) for free in self.free_at)

    def idle(self, now: float) -> int:
        return sum(1 for free in self.free_at if free <= now)


def simulate(tuner_name: str, seed: int, model: FarmModel, trainings: int, progress: Any = None) -> FarmRun:
    """One experiment of `trainings` trainings on the farm `model` describes."""
    logging.getLogger("nni").setLevel(logging.WARNING)
    table = load_table()
    median_latency = statistics.median(c.latency_ms for c in table.cells.values())
    rng = random.Random(seed)
    run = FarmRun(tuner_name, seed, model.workers, model.devices, trainings)
    tuner = make_farm_tuner(tuner_name, seed)
    tuner.update_search_space(search_space())
    ahead = tuner_name == "gensynth-ahead"
    devices = _Devices(model.devices)
    events: list[tuple[float, int, str, Any]] = []
    order = itertools.count()
    idle_workers, started, ended = model.workers, 0, 0
    tuner_free_at, wake_at, now = 0.0, -1.0, 0.0  # wake_at: the pending "tuner-free" event
    queue: list = []  # candidates handed out for screening, not yet on a device
    measured: set[int] = set()  # distinct cells measured so far (by id: one object per cell)
    wall_start = time.perf_counter()

    def dispatch() -> None:
        nonlocal idle_workers, started, tuner_free_at, wake_at
        while idle_workers and started < trainings and tuner_free_at <= now:
            _measured.clear()
            t0 = time.perf_counter()
            parameters = tuner.generate_parameters(started)
            run.suggest_ms.append((ended, (time.perf_counter() - t0) * 1e3))
            end = now
            measured.update(id(cell) for cell in _measured)
            for cell in _measured:  # measured one after another inside the suggestion
                end = devices.reserve(end, model.measuring_s(cell))
                if ahead:  # the device may screen again once this measurement ends
                    heapq.heappush(events, (end, next(order), "device-free", None))
            run.measurements_in_suggestions += len(_measured)
            tuner_free_at = end
            cell = table.lookup(parameters)
            duration = model.training_s(cell, median_latency, rng)
            run.worker_busy_s += duration
            heapq.heappush(events, (end + duration, next(order), "trained", (started, parameters, cell)))
            idle_workers -= 1
            started += 1
        if idle_workers and started < trainings and tuner_free_at > now and tuner_free_at != wake_at:
            wake_at = tuner_free_at  # the dispatcher is inside a suggestion until then
            heapq.heappush(events, (tuner_free_at, next(order), "tuner-free", None))
        if ahead and ended < trainings:
            free = devices.idle(now)
            if free and len(queue) < free:
                t0 = time.perf_counter()
                handed = tuner.parameters_to_screen(SCREEN_BATCH * free)
                run.screen_ms.append((ended, (time.perf_counter() - t0) * 1e3))
                if not handed and not queue and run.ran_dry_s is None:
                    run.ran_dry_s, run.device_busy_before_dry_s = now, devices.busy_until(now)
                    run.distinct_measured_at_dry = len(measured)
                queue.extend(handed)
            for parameters in queue[:free]:
                cell = table.lookup(parameters)
                measured.add(id(cell))
                end = devices.reserve(now, model.measuring_s(cell))
                heapq.heappush(events, (end, next(order), "measured", (parameters, cell)))
            del queue[:free]

    dispatch()
    while ended < trainings:
        if not events:
            raise RuntimeError(f"farm simulation stalled after {ended} of {trainings} trainings")
        now, _, kind, payload = heapq.heappop(events)
        if kind == "trained":
            parameter_id, parameters, cell = payload
            tuner.receive_trial_result(parameter_id, parameters, metrics_for(cell.accuracy, cell.latency_ms),
                                       customized=False, trial_job_id=f"farm{seed}-{parameter_id}")
            tuner.trial_end(parameter_id, True)
            run.accuracy.append(cell.accuracy)
            run.latency_ms.append(cell.latency_ms)
            idle_workers += 1
            ended += 1
            if progress is not None:
                progress.update(1)
        elif kind == "measured":
            parameters, cell = payload
            tuner.receive_measurement(parameters, {"latency_ms": cell.latency_ms})
            run.measurements_ahead += 1
        dispatch()
    run.makespan_s = now
    run.device_busy_s = devices.busy_until(now)
    run.wall_s = time.perf_counter() - wall_start
    return run
