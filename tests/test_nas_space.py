"""A model space's mutables as the engine's SearchSpace (nni_gensynth.nas.space)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytorch_lightning")  # nni.nas imports it

import nni  # noqa: E402
from nni.mutable import (Categorical, CategoricalMultiple, ExpressionConstraint, LabeledMutable, MutableDict,  # noqa: E402
                         Numerical)
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.space import RawFormatModelSpace, SimplifiedModelSpace  # noqa: E402

from nas_support import ToySpace, report_toy  # noqa: E402
from nni_gensynth.engine.generator import Generator  # noqa: E402
from nni_gensynth.nas import NasSearchSpace, NasSpaceError  # noqa: E402


def _points(space: NasSearchSpace, n: int = 200, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    generator = Generator(space.space)
    return [generator.sample(rng) for _ in range(n)]


def test_every_mutable_type_maps_to_an_engine_decision_and_back():
    mutables = MutableDict({
        "act": Categorical(["relu", "gelu", None], label="act"),
        "shape": Categorical([(1, 2), (3, 4)], label="shape"),  # tuples are not plain JSON: options are indices
        "lr": Numerical(1e-4, 1e-1, log_distributed=True, label="lr"),
        "width": Numerical(16, 128, quantize=16, label="width"),
        "bias": Numerical(mu=0.0, sigma=1.0, low=-1.0, high=1.0, label="bias"),
        "scale": Numerical(mu=0.0, sigma=0.5, log_distributed=True, quantize=0.1, label="scale"),
        "inputs": CategoricalMultiple([0, 1, 2, 3], n_chosen=2, label="inputs"),
        "any": CategoricalMultiple(["a", "b", "c"], label="any"),
    })
    space = NasSearchSpace(mutables)
    types = {label: spec["_type"] for label, spec in space.spec.items()}
    assert types == {"act": "choice", "shape": "choice", "lr": "loguniform", "width": "quniform", "bias": "normal",
                     "scale": "qlognormal", "inputs": "choice", "any": "choice"}
    assert space.spec["shape"]["_value"] == [0, 1]
    assert len(space.spec["inputs"]["_value"]) == 6 and len(space.spec["any"]["_value"]) == 8
    for arch in _points(space):
        sample = space.to_sample(arch)
        assert mutables.contains(sample), sample  # NNI accepts every point the engine proposes
        assert sample["shape"] in [(1, 2), (3, 4)] and -1.0 <= sample["bias"] <= 1.0


def test_a_custom_distribution_is_searched_between_its_quantiles():
    from scipy.stats import beta

    space = NasSearchSpace(MutableDict({"p": Numerical(distribution=beta(2, 5), label="p")}))
    low, high = space.spec["p"]["_value"]
    assert space.spec["p"]["_type"] == "uniform" and 0 < low < 0.05 and 0.8 < high < 1


def test_mutables_inside_a_candidate_become_nested_choices():
    space = NasSearchSpace(RawFormatModelSpace.from_model(ToySpace(constrained=False), FunctionalEvaluator(report_toy)))
    block = space.spec["toy/block"]["_value"]
    assert [option["_name"] for option in block] == ["conv", "pool", "skip"]
    assert "toy/kernel" in block[0] and "toy/kernel" not in space.spec  # used only by the conv candidate
    assert space.space.size() is None  # dropout is continuous
    for arch in _points(space, 50):
        sample = space.to_sample(arch)
        used = space.used_labels(sample)
        assert ("toy/kernel" in used) == (sample["toy/block"] == "conv")
        assert set(sample) == set(space.model_labels)  # NNI always gets every label


def test_the_simplified_format_keeps_the_nesting():
    space = NasSearchSpace(SimplifiedModelSpace.from_model(ToySpace(constrained=False), FunctionalEvaluator(report_toy)))
    assert "toy/kernel" in space.spec["toy/block"]["_value"][0]


def test_evaluator_mutables_are_decisions_but_not_part_of_the_network():
    evaluator = FunctionalEvaluator(report_toy, lr=nni.loguniform("lr", 1e-3, 1e-1))
    space = NasSearchSpace(RawFormatModelSpace.from_model(ToySpace(constrained=False), evaluator))
    assert space.spec["lr"]["_type"] == "loguniform"
    assert "lr" not in space.model_labels and "toy/width" in space.model_labels


def test_constraints_are_no_decision_and_rejected_samples_are_told_apart():
    model_space = RawFormatModelSpace.from_model(ToySpace(), FunctionalEvaluator(report_toy))
    space = NasSearchSpace(model_space)
    assert "toy/budget" not in space.spec  # the constraint is checked, not searched
    assert model_space.contains(space.filler)
    verdicts = {}
    for arch in _points(space, 100):
        sample = space.to_sample(arch)
        verdicts[sample["toy/width"] * sample["toy/depth"] <= 16] = space.read(sample) is not None
    assert verdicts == {True: True, False: False}


def test_a_space_with_no_valid_sample_or_an_unknown_mutable_is_refused():
    a, b = Categorical([1, 2], label="a"), Categorical([1, 2], label="b")
    with pytest.raises(NasSpaceError, match="no valid sample"):
        NasSearchSpace(MutableDict({"a": a, "b": b, "never": ExpressionConstraint(a + b > 10, label="never")}))

    class Weird(LabeledMutable):
        label = "weird"

        def leaf_mutables(self, is_leaf):
            yield self

        def check_contains(self, sample):
            return None

    with pytest.raises(NasSpaceError, match="'weird' is a Weird"):
        NasSearchSpace(MutableDict({"weird": Weird()}))
    with pytest.raises(NasSpaceError, match="has no mutable"):
        NasSearchSpace(MutableDict({}))
