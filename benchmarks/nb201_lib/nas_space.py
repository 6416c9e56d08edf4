"""NNI's NasBench201 hub space with the NB201 table as its evaluator and its device.

The model space is `nni.nas.hub.pytorch.NasBench201` itself: six `LayerChoice`s labelled
`cell/<from>_<to>` shared by every cell, over none | skip_connect | conv_1x1 | conv_3x3 |
avg_pool_3x3. A frozen model's sample names its cell; the table gives the cell's CIFAR-10
validation accuracy and measured Raspberry Pi 4 latency, so no network is built or trained.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional

import nni
from nni.nas.evaluator import FunctionalEvaluator

from .data import EDGES, Arch, load_table, parameters_of
from .device import lookup_latency
from .harness import metrics_for

# NasBench201's labels, in the table's edge order (e10 = node 1 from node 0, ...), and op names.
LABELS: dict[str, str] = {"cell/0_1": "e10", "cell/0_2": "e20", "cell/1_2": "e21",
                          "cell/0_3": "e30", "cell/1_3": "e31", "cell/2_3": "e32"}
HUB_OPS: dict[str, str] = {"none": "none", "skip_connect": "skip_connect", "conv_1x1": "nor_conv_1x1",
                           "conv_3x3": "nor_conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}


def model_space() -> Any:
    """NNI's NAS-Bench-201 hub space, as the benchmark defines it (16 stem channels, 5 cells a stack)."""
    from nni.nas.hub.pytorch import NasBench201

    return NasBench201()


def cell_of(sample: Mapping[str, Any]) -> Arch:
    """The table's cell (ops in EDGES order) of a NasBench201 sample; ValueError naming a bad label."""
    by_edge = {}
    for label, edge in LABELS.items():
        op = sample.get(label)
        if op not in HUB_OPS:
            raise ValueError(f"sample[{label!r}] = {op!r} is not one of {sorted(HUB_OPS)}")
        by_edge[edge] = HUB_OPS[op]
    return tuple(by_edge[edge] for edge in EDGES)


def lookup_sample_latency(sample: Mapping[str, Any]) -> dict[str, float]:
    """The counted device for NAS strategies: Pi 4 latency of a NasBench201 sample, in ms."""
    return lookup_latency(parameters_of(cell_of(sample)))


class Trainings:
    """What one run trained, in order: cells, accuracies, latencies, and the wall time the search
    spent before each training (strategy, filter and NNI overhead, since the previous one)."""

    def __init__(self, calls: Callable[[], int]) -> None:
        self.calls = calls
        self.cells: list[Arch] = []
        self.accuracy: list[float] = []
        self.latency_ms: list[float] = []
        self.profiler_calls: list[int] = []
        self.suggest_ms: list[float] = []
        self._last = time.perf_counter()

    def train(self, sample: Mapping[str, Any]) -> dict[str, float]:
        started = time.perf_counter()
        self.suggest_ms.append((started - self._last) * 1e3)
        cell = cell_of(sample)
        entry = load_table()[cell]
        self.cells.append(cell)
        self.accuracy.append(entry.accuracy)
        self.latency_ms.append(entry.latency_ms)
        self.profiler_calls.append(self.calls())
        self._last = time.perf_counter()
        return metrics_for(entry.accuracy, entry.latency_ms)


_current: Optional[Trainings] = None


def set_trainings(trainings: Optional[Trainings]) -> None:
    """The run the evaluator records into (one run at a time per process)."""
    global _current
    _current = trainings


def report_cell(sample: Mapping[str, Any]) -> None:
    """The evaluation function: 'trains' the cell of `sample` and reports the table's metrics."""
    if _current is None:
        raise RuntimeError("set_trainings() must be called before a run")
    nni.report_final_result(_current.train(sample))


class TableEvaluator(FunctionalEvaluator):
    """A FunctionalEvaluator whose function gets the frozen model's sample: the table answers,
    so the network is never built (NNI's `_execute` hook for that, see nni.nas.evaluator)."""

    def __init__(self) -> None:
        super().__init__(report_cell)

    def _execute(self, model: Any) -> Any:
        return self.evaluate(model.sample)
