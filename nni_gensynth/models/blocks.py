"""Small typed building blocks shared by the model builders (macro space, later prototypes).

Each block takes explicit channel counts and strides; global policy (channel rounding, which
stage downsamples) lives in the builders, not here.
"""
from __future__ import annotations

from torch import Tensor, nn


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6 (or no activation), 'same' padding for odd kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand -> kxk depthwise -> 1x1 linear projection.

    With expansion 1 the expand conv is omitted (as in MobileNetV2's first block). The identity
    shortcut is used when stride is 1 and the channel count is unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 expansion: int = 6) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        if kernel_size % 2 != 1:
            raise ValueError(f"InvertedResidual kernel_size must be odd, got {kernel_size}")
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, kernel_size=1))
        layers.append(ConvBNAct(hidden, hidden, kernel_size=kernel_size, stride=stride, groups=hidden))
        layers.append(ConvBNAct(hidden, out_channels, kernel_size=1, activation=False))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.shape = (in_channels, out_channels, kernel_size, stride, expansion)

    def layer_token(self) -> str:
        """What this block builds, e.g. 'ir16-24k3s2e6': blocks with equal tokens are the same
        layers, wherever in a search space's prototype they came from (networks.network_key)."""
        in_channels, out_channels, kernel, stride, expansion = self.shape
        return f"ir{in_channels}-{out_channels}k{kernel}s{stride}e{expansion}"

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class ClassifierHead(nn.Module):
    """Global average pooling -> flatten -> linear classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(x).flatten(1))


def round_channels(channels: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% below the request
    (the MobileNet rounding rule, so that hardware-friendly widths do not shrink a layer much)."""
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded
