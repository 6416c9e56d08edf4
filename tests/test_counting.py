"""Params and MACs come from torch's FlopCounterMode; check them against a hand calculation."""
import pytest
from torch import nn

from nni_gensynth.counting import count, count_macs, count_params


def conv_linear_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, padding=1, bias=True),  # 8x8 -> 8x8
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )


def test_conv_plus_linear_matches_hand_calculation():
    model = conv_linear_net()
    # conv: every output element (4 x 8 x 8) is a 1x3x3 dot product; linear: 256 x 10.
    conv_macs = 4 * 8 * 8 * (1 * 3 * 3)
    linear_macs = 256 * 10
    assert count_macs(model, (1, 1, 8, 8)) == conv_macs + linear_macs == 4864
    assert count_params(model) == (4 * 1 * 3 * 3 + 4) + (256 * 10 + 10) == 2610


def test_depthwise_conv_counts_groups():
    model = nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8, bias=False)
    assert count_macs(model, (1, 8, 8, 8)) == 8 * 8 * 8 * 9


def test_macs_scale_with_batch_and_mode_is_restored():
    model = conv_linear_net().train()
    assert count_macs(model, (3, 1, 8, 8)) == 3 * 4864
    assert model.training


def test_count_returns_both_and_rejects_bad_shape():
    assert count(conv_linear_net(), (1, 1, 8, 8)) == {"params": 2610, "macs": 4864}
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(conv_linear_net(), (8,))
