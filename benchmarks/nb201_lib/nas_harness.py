"""One run = one NAS strategy, one seed, `budget` trainings, through a real NasExperiment.

`NasExperiment(NasBench201(), TableEvaluator(), strategy, NasExperimentConfig("sequential", "raw",
"local"))` with `max_trial_number = budget`: the sequential engine trains (looks up) each submitted
model at once, in this process. A model a filter blocks is not trained and does not count. The
experiment's files go to a temporary folder and its entry leaves NNI's experiment list afterwards.

NNI's TPE strategy (HPOTunerStrategy) sleeps 1 s after every submission to poll for a free worker;
under the sequential engine the model has already been trained by then, so the harness skips that
sleep (it would add 200 s per run and change nothing else).
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from typing import Callable, Iterator, Optional

import numpy as np

from .data import DATA_ENV, load_table
from .device import counting
from .harness import RunRecord
from .nas_space import TableEvaluator, Trainings, model_space, set_trainings
from .nas_strategies import make_strategy


@contextlib.contextmanager
def _no_poll_sleep() -> Iterator[None]:
    import nni.nas.strategy.hpo as hpo

    original = hpo.time
    hpo.time = types.SimpleNamespace(sleep=lambda seconds: None)
    try:
        yield
    finally:
        hpo.time = original


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """NNI's strategies log every model at INFO and warn about each filtered one: keep errors only."""
    loggers = [logging.getLogger(name) for name in ("nni", "nni_gensynth")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _forget(experiment_id: str) -> None:
    from nni.tools.nnictl.config_utils import Experiments

    Experiments().remove_experiment(experiment_id)


def run_one(name: str, seed: int, budget: int, data: Optional[str] = None) -> RunRecord:
    """Run strategy `name` under `seed` for `budget` trainings; every profiler call is counted."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    if data is not None:
        os.environ[DATA_ENV] = str(data)
    load_table(data)
    random.seed(seed)
    np.random.seed(seed)
    record = RunRecord(name, seed, budget)
    workdir = tempfile.mkdtemp(prefix="nb201-nas-")
    start = time.perf_counter()
    try:
        with counting() as counter, _quiet(), _no_poll_sleep():
            trainings = Trainings(counter.count)
            set_trainings(trainings)
            config = NasExperimentConfig("sequential", "raw", "local")
            config.max_trial_number = budget
            config.experiment_working_directory = workdir
            experiment = NasExperiment(model_space(), TableEvaluator(), make_strategy(name, seed), config)
            try:
                experiment.run()
            finally:
                experiment.stop()
                _forget(experiment.id)
                set_trainings(None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record.accuracy, record.latency_ms = trainings.accuracy, trainings.latency_ms
    record.architectures = [",".join(cell) for cell in trainings.cells]
    record.profiler_calls, record.suggest_ms = trainings.profiler_calls, trainings.suggest_ms
    record.distinct_architectures = len(set(trainings.cells))
    record.wall_s = time.perf_counter() - start
    if len(record.accuracy) != budget:
        raise RuntimeError(f"{name} seed {seed} stopped after {len(record.accuracy)} of {budget} trainings")
    return record


def run_task(task: tuple[str, int, int, Optional[str]]) -> dict:
    """Process-pool entry point, BLAS limited to one thread: (strategy, seed, budget, data) -> RunRecord dict."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return asdict(run_one(*task))


def run_all(names: list[str], seeds: list[int], budget: int, data: Optional[str], jobs: int,
            progress: Optional[Callable] = None) -> tuple[list[RunRecord], dict[str, str]]:
    """All (strategy, seed) runs over `jobs` processes (one run at a time per process: the
    evaluator records into a per-process run); the records and an error per failed strategy."""
    tasks = [(name, seed, budget, data) for seed in seeds for name in names]
    records: list[RunRecord] = []
    errors: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_task, task): task for task in tasks}
        for future in as_completed(futures):
            task, exc = futures[future], future.exception()
            if exc is not None:
                errors.setdefault(task[0], f"seed {task[1]}: {type(exc).__name__}: {exc}")
            else:
                records.append(RunRecord(**future.result()))
            if progress:
                progress(task, exc if exc is not None else None)
    return records, errors
