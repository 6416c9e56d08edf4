"""One run = one tuner, one seed, `budget` trainings, driven as NNI's dispatcher drives a tuner.

Per training, with trialConcurrency 1 (nni/runtime/msg_dispatcher.py):
  generate_multiple_parameters([id], st_callback=...)   (Tuner's default calls generate_parameters(id))
  -> the 'training': accuracy and latency looked up in the table
  -> receive_trial_result(id, parameters, metrics, customized=False, trial_job_id=...)
  -> trial_end(id, True)
with metrics = {"default": accuracy if latency <= 25 ms else 0, "accuracy": %, "latency_ms": ms}.
Feasibility is judged by the harness from the table, never by what a tuner believes.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import DATA_ENV, LATENCY_LIMIT_MS, arch_of, load_table, search_space
from .device import counting
from .tuners import make_tuner


@dataclass
class RunRecord:
    tuner: str
    seed: int
    budget: int
    accuracy: list[float] = field(default_factory=list)  # per training, %
    latency_ms: list[float] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)  # ops in EDGES order, joined by ","
    profiler_calls: list[int] = field(default_factory=list)  # cumulative, after each training
    suggest_ms: list[float] = field(default_factory=list)  # wall time of each suggestion
    setup_profiler_calls: int = 0  # calls made in update_search_space
    distinct_architectures: int = 0
    wall_s: float = 0.0

    def best_feasible_index(self, trainings: int, limit_ms: float = LATENCY_LIMIT_MS) -> int | None:
        """Index of the best feasible training among the first `trainings`, None if none was feasible."""
        feasible = [i for i in range(trainings) if self.latency_ms[i] <= limit_ms]
        return max(feasible, key=lambda i: self.accuracy[i]) if feasible else None

    def best_feasible(self, limit_ms: float = LATENCY_LIMIT_MS) -> list[float]:
        """Best feasible accuracy after each training (0.0 until the first feasible one)."""
        best, curve = 0.0, []
        for acc, lat in zip(self.accuracy, self.latency_ms):
            if lat <= limit_ms and acc > best:
                best = acc
            curve.append(best)
        return curve


def metrics_for(accuracy: float, latency_ms: float) -> dict[str, float]:
    feasible = latency_ms <= LATENCY_LIMIT_MS
    return {"default": accuracy if feasible else 0.0, "accuracy": accuracy, "latency_ms": latency_ms}


def _request_one(tuner, parameter_id: int) -> dict:
    sent: list = []
    params_list = tuner.generate_multiple_parameters(
        [parameter_id], st_callback=lambda id_, params: sent.append((id_, params)))
    if not params_list:
        raise RuntimeError(f"{type(tuner).__name__} returned no parameters for id {parameter_id} "
                           "(NNI would send NoMoreTrialJobs and the experiment would stall)")
    # What NNI sends to the trial goes through JSON; a tuner handing out non-JSON values fails here.
    return json.loads(json.dumps(params_list[0]))


def run_one(tuner_name: str, seed: int, budget: int, data: str | None = None) -> RunRecord:
    """Run `tuner_name` under `seed` for `budget` trainings; every profiler call is counted."""
    if data is not None:
        os.environ[DATA_ENV] = str(data)
    table = load_table(data)
    logging.getLogger("nni").setLevel(logging.WARNING)  # NNI tuners log every trial at INFO
    random.seed(seed)  # for tuners that use the global RNGs (NNI Evolution)
    np.random.seed(seed)
    record = RunRecord(tuner_name, seed, budget)
    start = time.perf_counter()
    with counting() as counter:
        tuner = make_tuner(tuner_name, seed)
        tuner.update_search_space(search_space())
        record.setup_profiler_calls = counter.count()
        seen = set()
        for parameter_id in range(budget):
            t0 = time.perf_counter()
            parameters = _request_one(tuner, parameter_id)
            record.suggest_ms.append((time.perf_counter() - t0) * 1e3)
            arch = arch_of(parameters)
            seen.add(arch)
            cell = table[arch]
            tuner.receive_trial_result(parameter_id, parameters, metrics_for(cell.accuracy, cell.latency_ms),
                                       customized=False, trial_job_id=f"run{seed}-{parameter_id}")
            tuner.trial_end(parameter_id, True)
            record.accuracy.append(cell.accuracy)
            record.latency_ms.append(cell.latency_ms)
            record.architectures.append(",".join(arch))
            record.profiler_calls.append(counter.count())
    record.distinct_architectures = len(seen)
    record.wall_s = time.perf_counter() - start
    return record


def run_task(task: tuple[str, int, int, str | None]) -> dict:
    """In-process entry point: (tuner, seed, budget, data) -> RunRecord as a dict."""
    return asdict(run_one(*task))


def run_task_single_thread(task: tuple[str, int, int, str | None]) -> dict:
    """Process-pool entry point: BLAS/OpenMP limited to one thread, so parallel runs do not
    oversubscribe the cores and distort every tuner's milliseconds per suggestion."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        return run_task(task)


def run_all(tuners: list[str], seeds: list[int], budget: int, data: str | None = None, jobs: int = 1,
            progress=None) -> tuple[list[RunRecord], dict[str, str]]:
    """All (tuner, seed) runs, over `jobs` processes; returns the records and an error per failed tuner.

    Each run counts its profiler calls in its own file (see device.counting), so runs in parallel
    processes never see each other's calls.
    """
    tasks = [(tuner, seed, budget, data) for seed in seeds for tuner in tuners]
    records: list[RunRecord] = []
    errors: dict[str, str] = {}

    def collect(task, outcome) -> None:
        if isinstance(outcome, BaseException):
            errors.setdefault(task[0], f"seed {task[1]}: {type(outcome).__name__}: {outcome}")
        else:
            records.append(RunRecord(**outcome))
        if progress:
            progress(task, outcome)

    if jobs <= 1:
        for task in tasks:
            try:
                outcome = run_task(task)
            except Exception as exc:  # one tuner failing must not lose the others' runs
                outcome = exc
            collect(task, outcome)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_task_single_thread, task): task for task in tasks}
            for future in as_completed(futures):
                exc = future.exception()
                collect(futures[future], exc if exc is not None else future.result())
    return records, errors
