"""Probing: stimuli in, responses out; responses obey the engine's contract."""
from __future__ import annotations

import json

import pytest
import torch

from nni_gensynth.data import load_digits
from nni_gensynth.engine import SearchSpace
from nni_gensynth.engine.inquisitor import Inquisitor, Record
from nni_gensynth.engine.objective import Requirements
from nni_gensynth.models import build_model, mobilenetv2, resnet
from nni_gensynth.probing import ChannelStats, probe, probe_responses, synthetic_stimuli
from nni_gensynth.training import TrainConfig, seed_everything, train

# a small point of the MobileNetV2 prototype space: narrowest widths, block 3 with t = 6 (48 hidden channels)
SMALL = {k: (v["_value"][0] if k.endswith("width") else v["_value"][-1] if k.endswith("expansion") else
             "keep" if k.endswith("block") else 3) for k, v in mobilenetv2.search_space().items()}


@pytest.fixture(scope="module")
def digits():
    return load_digits(image_size=16, channels=3)


@pytest.fixture(scope="module")
def trained(digits):
    seed_everything(0)
    model = build_model(SMALL, builder="mobilenetv2", in_channels=3)
    train(model, digits, TrainConfig(epochs=2, lr=1e-2), progress=False)
    return model


def batch(data, n=96):
    return data.x_test[:n], data.y_test[:n]


def test_carrying_channels_counts_the_share_of_taylor_importance():
    stats = ChannelStats(energy=torch.ones(4), taylor=torch.tensor([0.0, 5.0, 3.0, 2.0]))
    assert stats.carrying_channels(0.5) == 1 and stats.carrying_channels(0.8) == 2 and stats.carrying_channels(1.0) == 3
    assert ChannelStats(torch.zeros(3), torch.zeros(3)).carrying_channels(0.95) == 1


def test_synthetic_stimuli_match_the_input_statistics():
    like = torch.randn(64, 3, 16, 16) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + 3.0
    x = synthetic_stimuli(like, 40, seed=1)
    assert x.shape == (40, 3, 16, 16)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), like.mean(dim=(0, 2, 3)), atol=0.3)
    assert torch.allclose(x.std(dim=(0, 2, 3)), like.std(dim=(0, 2, 3)), rtol=0.25)
    assert torch.equal(x, synthetic_stimuli(like, 40, seed=1))


def test_dead_channels_give_a_smaller_width_target(trained, digits):
    x, y = batch(digits)
    intact = probe(trained, x, y).sites
    dead = build_model(SMALL, builder="mobilenetv2", in_channels=3)
    dead.load_state_dict(trained.state_dict())
    hidden = dead.blocks[2].block[-2]  # block 3's depthwise conv + BN + ReLU6: 48 channels
    with torch.no_grad():
        for layer in (hidden[0].weight, hidden[1].weight, hidden[1].bias):
            layer[12:] = 0.0  # 36 of 48 channels dead
    after = {s.decision: s for s in probe(dead, x, y).sites}
    before = {s.decision: s for s in intact}
    assert after["b3_expansion"].details["dead"] == 36
    assert after["b3_expansion"].details["carrying"] <= 12 < before["b3_expansion"].details["carrying"]
    assert after["b3_expansion"].target < before["b3_expansion"].target
    assert after["b3_expansion"].target == 2  # 12 channels over 8 inputs -> the smallest option >= 1.5


def test_a_block_whose_branch_is_zeroed_is_suggested_for_removal(trained, digits):
    x, y = batch(digits)
    model = build_model(SMALL, builder="mobilenetv2", in_channels=3)
    model.load_state_dict(trained.state_dict())
    with torch.no_grad():
        projection_bn = model.blocks[2].block[-1][1]
        projection_bn.weight.zero_()
        projection_bn.bias.zero_()
    sites = {s.decision: s for s in probe(model, x, y).sites}
    assert sites["b3_block"].target == "skip" and abs(sites["b3_block"].details["loss_rise"]) < 1e-6
    assert 0.0 < sites["b3_block"].weight <= 1.0
    # removing the intact trained block changes the loss (either way: after two epochs a block may
    # hurt as well as help, and which one varies with the machine's kernels); the zeroed one does not
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    intact = {s.decision: s for s in probe(trained, x, y).sites}
    assert abs(intact["b3_block"].details["loss_rise"]) > 1e-3
    # probing re-estimates batch-norm statistics, and puts the trained ones back
    assert all(torch.equal(state[k], v) for k, v in trained.state_dict().items())


def test_block_removal_is_judged_after_batch_norm_adapts(trained, digits):
    """Zeroing a branch of the trained network with its old BN statistics overstates the block's
    worth; the probe re-estimates them first, so its loss rise is below the raw one."""
    import math

    import torch.nn.functional as F

    from nni_gensynth.probing import _zeroing

    x, y = batch(digits)
    trained.eval()
    site = next(s for s in trained.probe_sites() if s.decision == "b3_block")
    with torch.no_grad():
        base = float(F.cross_entropy(trained(x), y))
        handle = _zeroing(site.module)
        raw = (float(F.cross_entropy(trained(x), y)) - base) / math.log(10)
        handle.remove()
    probed = {s.decision: s for s in probe(trained, x, y).sites}["b3_block"]
    assert probed.details["loss_rise"] < raw


@pytest.mark.parametrize("module,builder", [(mobilenetv2, "mobilenetv2"), (resnet, "resnet18")])
def test_responses_obey_the_contract_and_are_small(module, builder, digits):
    space_spec = module.search_space()
    params = {k: v["_value"][0] if not isinstance(v["_value"][0], str) else v["_value"][0]
              for k, v in space_spec.items()}
    seed_everything(0)
    model = build_model(params, builder=builder, in_channels=3)
    text = probe_responses(model, digits.x_test, digits.y_test, n_probe=48)
    assert isinstance(text, str) and len(text) < 2000
    responses = json.loads(text)
    assert responses and set(responses) <= set(space_spec)
    for name, response in responses.items():
        assert set(response) == {"target", "weight"}
        assert response["target"] in space_spec[name]["_value"], name
        assert 0.0 < response["weight"] <= 1.0
    # the engine reads them: the suggested network is a point of the space with those values
    space = SearchSpace(space_spec)
    record = Record(space.from_parameters(params), responses=responses)
    suggested, confidence = Inquisitor(space, Requirements()).suggested_architecture(record)
    as_params = space.to_parameters(suggested)
    assert all(as_params[name] == r["target"] for name, r in responses.items()) and 0.0 < confidence <= 1.0


def test_bad_probe_input_is_named(trained, digits):
    x, y = batch(digits)
    with pytest.raises(ValueError, match="fraction"):
        probe(trained, x, y, fraction=0.0)
    with pytest.raises(ValueError, match="matching"):
        probe(trained, x, y[:3])
    with pytest.raises(TypeError, match="probe_sites"):
        probe(torch.nn.Linear(3, 2), x, y)
    assert probe_responses(torch.nn.Linear(3, 2), x, y) is None


def test_the_evaluator_reports_responses_for_prototype_spaces_unless_told_not_to():
    from nni_gensynth.evaluator import EvaluationSpec, Evaluator, SpecError

    spec = EvaluationSpec(epochs=1, hw_profiles=(), image_size=16, channels=3, builder="mobilenetv2")
    result = Evaluator(spec).evaluate(SMALL, progress=False)
    responses = json.loads(result["responses"])
    assert responses["b3_expansion"]["target"] in (1, 2, 3, 4, 6) and "b3_block" in responses and "b2_block" not in responses
    json.dumps(result)  # the whole final result stays JSON
    quiet = Evaluator(spec.replace(probe=False)).evaluate(SMALL, progress=False)
    assert "responses" not in quiet and quiet["accuracy"] == result["accuracy"]
    with pytest.raises(SpecError, match="probe_sites"):
        Evaluator(EvaluationSpec(epochs=1, hw_profiles=(), image_size=8, probe=True,
                                 builder="user_builder_example:build_tiny_net")).evaluate({"width": 4, "kernel": 1},
                                                                                          progress=False)


def test_blocks_cheap_alone_but_costly_together_are_not_all_removed(monkeypatch):
    """Removal costs do not add up: A and B are each cheap, removing both is not; C is costly."""
    from nni_gensynth import probing
    from nni_gensynth.models.prototype import BLOCK_OPTIONS, KEEP, ProbeSite

    sites = [ProbeSite(name, "block", torch.nn.Identity(), BLOCK_OPTIONS, KEEP) for name in ("A", "B", "C")]
    cost = {("A",): 0.001, ("B",): 0.002, ("C",): 0.5, ("A", "B"): 0.03}
    monkeypatch.setattr(probing, "_recalibrated_outputs", lambda *a: (0.1, None))
    monkeypatch.setattr(probing, "_block_effects",
                        lambda model, chosen, *a: (cost[tuple(s.decision for s in chosen)], 0.0))
    out = {r.decision: r for r in probing._block_responses(None, sites, None, None, None, skip_threshold=0.02)}
    assert out["A"].target == "skip" and out["B"].target == "keep" and out["C"].target == "keep"
    assert out["B"].weight < out["C"].weight  # cheap alone: a weak keep
    cost[("A", "B")] = 0.004  # together still cheap: both go
    out = {r.decision: r for r in probing._block_responses(None, sites, None, None, None, skip_threshold=0.02)}
    assert [out[n].target for n in "ABC"] == ["skip", "skip", "keep"]
    assert out["B"].details["joint_loss_rise"] == 0.004


def test_probing_yields_to_a_local_measurement_before_each_pass(trained, digits, monkeypatch):
    """The host is a device too: probing runs its passes between the lease's checks, as training does."""
    import nni_gensynth.probing as probing

    from contextlib import contextmanager

    calls = []

    @contextmanager
    def counted_batches():
        yield lambda: calls.append(1) or False

    monkeypatch.setattr(probing, "batches_on_host", counted_batches)
    sites = probe(trained, *batch(digits)).sites
    blocks = [s for s in sites if s.kind == "block"]
    assert blocks and len(calls) > len(blocks)  # the intact network's pass, then one per block at least
