"""Measuring modules built elsewhere: Evaluator.measure_module and the NAS ModelMeasurer."""
from __future__ import annotations

import time

import pytest
from torch import nn

from nni_gensynth.evaluator import EvaluationSpec, Evaluator

SHAPE = (1, 1, 8, 8)


def _net(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 10)).eval()


def test_measure_module_counts_then_measures_each_profile_under_the_given_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    evaluator = Evaluator(EvaluationSpec(hw_profiles=("host-cpu",), requirements={"params": {"max": 1000}}))
    small = evaluator.measure_module(_net(4), "nas-test-small", input_shape=SHAPE)
    assert small["params"] == 4 * 9 + 4 + 4 * 10 + 10 and small["latency_ms"] > 0 and small["profile"] == "host-cpu"
    started = time.perf_counter()
    again = evaluator.measure_module(_net(4), "nas-test-small", input_shape=SHAPE)
    assert again["latency_ms"] == small["latency_ms"] and time.perf_counter() - started < 1.0  # a cache hit
    big = evaluator.measure_module(_net(64), "nas-test-big", input_shape=SHAPE)
    assert big["params"] > 1000 and "latency_ms" not in big  # counts broke the requirement: no device time
    assert "latency_ms" in evaluator.measure_module(_net(64), "nas-test-big", input_shape=SHAPE, stop_when_broken=False)


def test_the_nas_measurer_keys_networks_by_the_labels_they_use():
    pytest.importorskip("pytorch_lightning")
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.space import RawFormatModelSpace

    from nas_support import ToySpace, report_toy, toy_latency
    from nni_gensynth.engine import Requirements
    from nni_gensynth.nas import ModelMeasurer, NasSearchSpace

    model_space = RawFormatModelSpace.from_model(ToySpace(constrained=False), FunctionalEvaluator(report_toy))
    calls = []
    measurer = ModelMeasurer(Requirements({"latency_ms": {"max": 1}}),
                             profiler=lambda sample: calls.append(sample) or toy_latency(sample))
    measurer.bind(NasSearchSpace(model_space))
    base = {"toy/width": 4, "toy/depth": 1, "toy/block": "pool", "toy/kernel": 1, "toy/dropout": 0.1}
    first = measurer(model_space.freeze(base))
    assert measurer(model_space.freeze(dict(base, **{"toy/kernel": 5}))) == first  # kernel unused by "pool"
    assert len(calls) == 1 and measurer.calls == 1
    measurer(model_space.freeze(dict(base, **{"toy/block": "conv"})))
    assert len(calls) == 2 and not measurer.broken(first)
