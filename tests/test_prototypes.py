"""Prototype networks (MobileNetV2, ResNet-18) and their derived spaces; a user's own builder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_gensynth.counting import count
from nni_gensynth.engine import SearchSpace
from nni_gensynth.models import PROTOTYPES, build_model, mobilenetv2, resnet, resolve_builder

REPO = Path(__file__).resolve().parents[1]
INPUT = (2, 3, 32, 32)


@pytest.mark.parametrize("module,builder,filename", [
    (mobilenetv2, "mobilenetv2", "mobilenetv2_prototype.json"),
    (resnet, "resnet18", "resnet18_prototype.json")])
def test_space_file_is_the_derived_space_and_the_prototype_is_a_point_of_it(module, builder, filename):
    on_disk = json.loads((REPO / "search_spaces" / filename).read_text())
    assert on_disk == module.search_space()
    space = SearchSpace(on_disk)
    proto = resolve_builder(PROTOTYPES[builder])()
    assert space.to_parameters(space.from_parameters(proto)) == proto
    # every prototype value is the largest option of its width decisions (the space only shrinks)
    for key, value in proto.items():
        options = on_disk[key]["_value"]
        if key.endswith(("_width", "_mid")):
            assert value == max(options), key


def test_mobilenetv2_prototype_is_the_paper_network_for_32x32():
    model = build_model(mobilenetv2.prototype_parameters(), builder="mobilenetv2", in_channels=3)
    assert len(model.blocks) == 17
    assert [b.expansion for b in model.spec.blocks] == [1] + [6] * 16
    assert [b.out_channels for b in model.spec.blocks] == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96,
                                                           160, 160, 160, 320]
    counts = count(model, (1, 3, 32, 32))
    # MobileNetV2 1.0 with a 10-class head: 2.24 M parameters (3.5 M with 1000 classes, as published)
    assert 2.2e6 < counts["params"] < 2.3e6
    feature = model.head_conv(torch.nn.Sequential(model.stem, *model.blocks)(torch.zeros(1, 3, 32, 32)))
    assert feature.shape == (1, 1280, 4, 4)  # 32 -> 16 -> 8 -> 4: stride 1 in the stem and at c=24
    assert model(torch.zeros(*INPUT)).shape == (2, 10)


def test_resnet18_prototype_shapes_and_size():
    model = build_model(resnet.prototype_parameters(), builder="resnet18", in_channels=3)
    assert len(model.blocks) == 8 and model(torch.zeros(*INPUT)).shape == (2, 10)
    assert 11.1e6 < count(model, (1, 3, 32, 32))["params"] < 11.2e6  # ResNet-18 on CIFAR-10: 11.17 M


def test_skipping_blocks_and_shrinking_widths_builds_smaller_networks_of_the_same_interface():
    proto = mobilenetv2.prototype_parameters()
    small = dict(proto, s6_width=40, head_width=320, b5_block="skip", b6_block="skip", b3_expansion=2, b3_kernel=5)
    full, reduced = (build_model(p, builder="mobilenetv2", in_channels=3) for p in (proto, small))
    assert len(reduced.blocks) == 15 and "b5:" not in reduced.spec.arch_string() and "b3:k5e2" in reduced.spec.arch_string()
    assert count(reduced, INPUT)["params"] < count(full, INPUT)["params"]
    assert reduced(torch.zeros(*INPUT)).shape == (2, 10)
    # dropping every shortcut leaves a plain network; skipped blocks do not change the key
    rproto = resnet.prototype_parameters()
    plain = dict(rproto, **{f"b{j}_shortcut": "drop" for j in range(1, 9)})
    net = build_model(plain, builder="resnet18", in_channels=3)
    assert not any(b.identity or b.shortcut is not None for b in net.blocks)
    a = dict(rproto, b2_block="skip", b2_mid=16)
    b = dict(rproto, b2_block="skip", b2_mid=64)
    assert build_model(a, builder="resnet18").network_key == build_model(b, builder="resnet18").network_key


@pytest.mark.parametrize("change,message", [
    ({"b5_block": "maybe"}, "b5_block"), ({"b3_kernel": 4}, "b3_kernel"), ({"s2_width": 0}, "s2_width"),
    ({"bogus": 1}, "bogus")])
def test_bad_parameters_name_the_key(change, message):
    with pytest.raises(ValueError, match=message):
        build_model(dict(mobilenetv2.prototype_parameters(), **change), builder="mobilenetv2")
    params = mobilenetv2.prototype_parameters()
    del params["head_width"]
    with pytest.raises(ValueError, match="head_width"):
        build_model(params, builder="mobilenetv2")


def test_a_users_own_builder_runs_as_a_trial():
    from nni_gensynth.evaluator import EvaluationSpec, Evaluator
    from user_builder_example import TINY_SPACE

    space = SearchSpace(TINY_SPACE)
    params = space.to_parameters(space.from_parameters({"width": 8, "kernel": 3}))
    spec = EvaluationSpec(epochs=1, hw_profiles=(), image_size=8, builder="user_builder_example:build_tiny_net")
    result = Evaluator(spec).evaluate(params, progress=False)
    assert result["params"] == 3 * 3 * 8 + 8 + 8 * 10 + 10 and 0.0 <= result["accuracy"] <= 1.0
    assert "responses" not in result  # no probe sites: nothing to report
    with pytest.raises(ValueError, match="cannot be imported"):
        resolve_builder("user_builder_example:nope")
