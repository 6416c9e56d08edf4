"""A network is trained once: parameter dicts that build the same layers share a network key, the
evaluator names what a training would be (`training_key`), and the engine skips twins."""
from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings, strategies as st

from nni_gensynth.engine.gensynth import GenSynth
from nni_gensynth.engine.metrics import TRAINING_KEY
from nni_gensynth.engine.objective import Objective, Requirements
from nni_gensynth.engine.space import SearchSpace
from nni_gensynth.evaluator import EvaluationSpec, Evaluator
from nni_gensynth.models import build_model, mobilenetv2, resnet

MBV2 = dict(builder="mobilenetv2", image_size=32, channels=3, num_classes=10)
MACRO = {"stem_width": 16, "stage1_depth": 1, "stage1_width": 16, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 24, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 4, "stage3_width": 32, "stage3_kernel": 3, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 3}


def key(parameters: dict, builder: str = "macro_mobilenet") -> str:
    return build_model(parameters, builder=builder, in_channels=3).network_key


# -- the network key names the layers built ---------------------------------------------------------
def test_mobilenetv2_keeping_different_blocks_of_a_stage_builds_one_network():
    proto = mobilenetv2.prototype_parameters()
    # stage 4 is blocks 7-10 at equal settings: keeping 8 and 9 or 8 and 10 builds the same layers
    a, b = dict(proto, b10_block="skip"), dict(proto, b9_block="skip")
    assert a != b and key(a, "mobilenetv2") == key(b, "mobilenetv2")
    assert key(dict(b, b10_kernel=5), "mobilenetv2") != key(a, "mobilenetv2")


def test_resnet_skipping_either_block_of_a_stage_builds_one_network():
    proto = resnet.prototype_parameters()
    a, b = dict(proto, b1_block="skip"), dict(proto, b2_block="skip")
    assert key(a, "resnet18") == key(b, "resnet18")
    assert key(dict(a, b2_mid=32), "resnet18") != key(a, "resnet18")


def test_macro_stage_split_and_rounding_twins_share_a_key():
    # stage 4 has stride 1 for 16x16 inputs: stage 3 at depth 4 builds what 1 + 3 builds
    split = dict(MACRO, stage3_depth=1, stage4_depth=3)
    assert key(MACRO) == key(split)
    assert key(dict(MACRO, stage3_width=31)) == key(MACRO)  # rounded to 32 either way
    assert key(dict(split, stage4_kernel=5)) != key(MACRO)


# -- the evaluator names the training ---------------------------------------------------------------
def test_training_key_is_equal_for_twins_and_differs_with_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    evaluator = Evaluator(EvaluationSpec(**MBV2, requirements={"params": {"max": 10**9}}))
    proto = mobilenetv2.prototype_parameters()
    a, b = dict(proto, b10_block="skip", lr=0.01), dict(proto, b9_block="skip", lr=0.01)
    first, twin, other = evaluator(a), evaluator(b), evaluator(dict(a, lr=0.02))
    assert first[TRAINING_KEY] == twin[TRAINING_KEY] != other[TRAINING_KEY]
    assert first["params"] == twin["params"]


# -- the engine trains each training key once ------------------------------------------------------
# 48 points; the profiler says they train as 12 distinct networks (w 1 and 2 alike, k 3 and 4 alike...)
SPACE = {"w": {"_type": "choice", "_value": [1, 2, 3, 4, 5, 6, 7, 8]},
         "k": {"_type": "choice", "_value": [3, 4, 5, 6, 7, 8]}}


def training_of(p: dict) -> str:
    return f"w{(p['w'] + 1) // 2}k{(p['k'] - 1) // 2}"


class TwinProfiler:
    def __init__(self, key_of=training_of) -> None:
        self.key_of = key_of

    def __call__(self, p: dict) -> dict:
        return {"latency_ms": float(p["w"] * p["k"]), TRAINING_KEY: self.key_of(p)}


def engine(seed: int = 0, profiler=None) -> GenSynth:
    return GenSynth(SearchSpace(SPACE), Objective("accuracy"), Requirements({"latency_ms": {"max": 1e6}}),
                    profiler=profiler or TwinProfiler(), seed=seed, population_size=4, max_profiler_calls=40,
                    pool_size=64)


def train(gen: GenSynth, arch) -> dict:
    p = gen.space.to_parameters(arch)
    gen.tell(arch, {"accuracy": 0.5 + 0.01 * p["w"] + 0.001 * p["k"], TRAINING_KEY: training_of(p)})
    return p


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
@example(1496)  # the 12th proposal's pool held only twins of trained networks: it is redrawn
def test_twelve_distinct_trainings_are_trained_twelve_times_without_repeats(seed):
    gen = engine(seed)
    trained = [training_of(train(gen, gen.ask())) for _ in range(12)]
    assert sorted(trained) == sorted(set(trained)) and len(trained) == 12
    assert gen.twins_skipped >= 1  # some twins were measured and passed over


def test_twins_of_pending_proposals_stay_untrained_after_a_restart():
    gen = engine(3)
    pending = [gen.ask() for _ in range(5)]  # proposed, no result yet
    state = json.loads(json.dumps(gen.state_dict(), allow_nan=False))
    resumed = engine(3)
    resumed.load_state_dict(state)
    assert resumed.twins_skipped == gen.twins_skipped
    claimed = {training_of(resumed.space.to_parameters(a)) for a in pending}
    for _ in range(7):
        p = train(resumed, resumed.ask())
        assert training_of(p) not in claimed
        claimed.add(training_of(p))


def test_generate_returns_distinct_trainings():
    gen = engine(1)
    for _ in range(8):
        train(gen, gen.ask())
    networks = gen.generate(6)
    keys = [training_of(gen.space.to_parameters(a)) for a in networks]
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.parametrize("bad", [123, "x" * 2000, ["a"], {"nested": 1}, ""])
def test_a_training_key_that_is_not_short_text_is_ignored(bad):
    gen = engine(2, TwinProfiler(lambda p: bad))
    archs = [gen.ask() for _ in range(12)]
    assert len(set(archs)) == 12 and gen.twins_skipped == 0  # no key: nothing is a twin
