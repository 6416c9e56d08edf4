"""Builder of the macro MobileNetV2 space: round trips over samples of the real search space,
bad parameters rejected with the key named."""
import json
import math
import random
from pathlib import Path

import pytest
import torch

from nni_gensynth.models import build_model, resolve_builder
from nni_gensynth.models.macro_mobilenet import MacroSpec, StageSpec, decode_parameters
from nni_gensynth.models.blocks import InvertedResidual, round_channels

SPACE = json.loads((Path(__file__).resolve().parents[1] / "search_spaces" / "mobilenet_macro.json").read_text())


def sample(rng: random.Random) -> dict:
    """One point of the NNI space (choice, randint [low, high), loguniform)."""
    params = {}
    for key, spec in SPACE.items():
        kind, value = spec["_type"], spec["_value"]
        if kind == "choice":
            params[key] = rng.choice(value)
        elif kind == "randint":
            params[key] = rng.randrange(value[0], value[1])
        elif kind == "loguniform":
            params[key] = math.exp(rng.uniform(math.log(value[0]), math.log(value[1])))
        else:
            raise AssertionError(f"test sampler does not know {kind}")
    return params


def smallest() -> dict:
    p = {k: (v["_value"][0]) for k, v in SPACE.items()}
    return p


def test_space_samples_build_and_run():
    rng = random.Random(0)
    for _ in range(12):
        params = sample(rng)
        model = build_model(params).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 1, 16, 16))
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()
        # the stage depths in the parameters are the blocks in the model
        n_blocks = sum(isinstance(m, InvertedResidual) for m in model.modules())
        assert n_blocks == sum(params[f"stage{i}_depth"] for i in range(1, 5))


def test_other_input_sizes_channels_and_classes():
    params = sample(random.Random(3))
    model = build_model(params, num_classes=7, in_channels=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_decode_encode_round_trip():
    rng = random.Random(1)
    for _ in range(20):
        params = sample(rng)
        spec = decode_parameters(params, ignore={"lr"})
        arch_params = {k: v for k, v in params.items() if k != "lr"}
        assert spec.to_parameters() == arch_params
        assert decode_parameters(spec.to_parameters()) == spec
        assert MacroSpec.from_arch_string(spec.arch_string()) == spec


def test_stage_token():
    stage = StageSpec(depth=2, width=24, kernel=3, expansion=6, stride=2)
    assert stage.token() == "ir_r2_k3_s2_e6_c24"
    assert StageSpec.from_token("ir_r2_k3_s2_e6_c24") == stage
    with pytest.raises(ValueError, match="ir_r2_k3"):
        StageSpec.from_token("ir_r2_k3")


def test_stage_with_depth_zero_is_skipped_and_widths_follow():
    params = smallest()
    params["stage4_depth"] = 0
    model = build_model(params)
    assert model.head.fc.in_features == params["stage3_width"]


@pytest.mark.parametrize("change, key", [
    ({"stage2_kernel": 4}, "stage2_kernel"),
    ({"stage1_width": 2.5}, "stage1_width"),
    ({"stem_width": "16"}, "stem_width"),
    ({"stage3_depth": -1}, "stage3_depth"),
    ({"stage1_widht": 8}, "stage1_widht"),
    ({"dropout": 0.1}, "dropout"),
])
def test_bad_parameters_name_the_key(change, key):
    params = {**smallest(), **change}
    with pytest.raises(ValueError, match=key):
        build_model(params)


def test_missing_key_is_named():
    params = smallest()
    del params["stage2_expansion"]
    with pytest.raises(ValueError, match="stage2_expansion"):
        build_model(params)


def test_all_depths_zero_rejected():
    params = {**smallest(), **{f"stage{i}_depth": 0 for i in range(1, 5)}}
    with pytest.raises(ValueError, match="depth"):
        build_model(params)


def test_integral_floats_accepted_as_ints():
    params = {**smallest(), "stage2_depth": 2.0}
    assert decode_parameters(params, ignore={"lr"}).stages[1].depth == 2


def test_builder_resolution():
    assert resolve_builder("nni_gensynth.models.macro_mobilenet:build_macro_mobilenet").__name__ == "build_macro_mobilenet"
    with pytest.raises(ValueError, match="nosuch"):
        resolve_builder("nosuch")
    with pytest.raises(ValueError, match="cannot be imported"):
        resolve_builder("nni_gensynth.models:no_such_function")


def test_round_channels():
    assert round_channels(16) == 16
    assert round_channels(20) == 24
    assert round_channels(3) == 8
    assert round_channels(17, divisor=4) == 16


def test_network_string_ignores_settings_of_skipped_stages():
    a = {**smallest(), "stage4_depth": 0, "stage4_kernel": 3}
    b = {**a, "stage4_kernel": 5, "stage4_width": 128}
    assert build_model(a).network_key == build_model(b).network_key
    assert build_model(a).spec.arch_string() != build_model(b).spec.arch_string()
    c = {**a, "stage4_depth": 1}
    assert build_model(c).network_key != build_model(a).network_key
