"""A compact MobileNetV2-style macro search space for small inputs (search_spaces/mobilenet_macro.json).

An architecture is a stem width plus up to four stages of inverted-residual blocks, each stage
described by depth, width, kernel size and expansion ratio. In the spirit of timm's EfficientNet
builder, the flat NNI parameter dict is decoded into typed specs (`MacroSpec`, `StageSpec`), each
stage has a compact token such as "ir_r2_k3_s2_e6_c24", and global policy — which stages
downsample, channel rounding — lives here in the builder, not in the space.

Parameter keys (all integers): `stem_width`, and for stage i = 1, 2, ...:
`stage{i}_depth` (0 skips the stage), `stage{i}_width`, `stage{i}_kernel`, `stage{i}_expansion`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from torch import Tensor, nn

from .blocks import ClassifierHead, ConvBNAct, InvertedResidual, round_channels

STAGE_FIELDS = ("depth", "width", "kernel", "expansion")
# Stride of the first block of each stage, for 16x16 inputs: 16 -> 16 -> 8 -> 4 -> 4.
# Stages beyond these keep the resolution.
DEFAULT_STAGE_STRIDES = (1, 2, 2, 1)
_STAGE_KEY = re.compile(r"^stage(\d+)_(\w+)$")
_TOKEN = re.compile(r"^ir_r(\d+)_k(\d+)_s(\d+)_e(\d+)_c(\d+)$")


@dataclass(frozen=True)
class StageSpec:
    """One stage: `depth` inverted-residual blocks of `width` output channels; the first has `stride`."""

    depth: int
    width: int
    kernel: int
    expansion: int
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("depth", "width", "kernel", "expansion", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"StageSpec.{name} must be an int, got {value!r}")
        if self.depth < 0:
            raise ValueError(f"StageSpec.depth must be >= 0, got {self.depth}")
        if self.width < 1 or self.expansion < 1:
            raise ValueError(f"StageSpec width and expansion must be >= 1, got {self.width}, {self.expansion}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"StageSpec.kernel must be a positive odd int, got {self.kernel}")
        if self.stride not in (1, 2):
            raise ValueError(f"StageSpec.stride must be 1 or 2, got {self.stride}")

    def token(self) -> str:
        """Compact text form, e.g. 'ir_r2_k3_s2_e6_c24' (repeats, kernel, stride, expansion, channels)."""
        return f"ir_r{self.depth}_k{self.kernel}_s{self.stride}_e{self.expansion}_c{self.width}"

    @classmethod
    def from_token(cls, token: str) -> "StageSpec":
        """Inverse of `token()`; a malformed token raises ValueError naming it."""
        match = _TOKEN.match(token)
        if match is None:
            raise ValueError(f"bad stage token {token!r}: expected like 'ir_r2_k3_s2_e6_c24'")
        depth, kernel, stride, expansion, width = (int(g) for g in match.groups())
        return cls(depth=depth, width=width, kernel=kernel, expansion=expansion, stride=stride)


@dataclass(frozen=True)
class MacroSpec:
    """A whole network of the macro space: stem width and the stages in order."""

    stem_width: int
    stages: tuple[StageSpec, ...]

    def arch_string(self) -> str:
        """Compact text form, e.g. 'stem16|ir_r1_k3_s1_e1_c16|ir_r2_k5_s2_e6_c24|...'."""
        return "|".join([f"stem{self.stem_width}"] + [s.token() for s in self.stages])

    @classmethod
    def from_arch_string(cls, text: str) -> "MacroSpec":
        """Inverse of `arch_string()`."""
        head, *tokens = text.split("|")
        if not head.startswith("stem") or not head[4:].isdigit():
            raise ValueError(f"bad architecture string {text!r}: must start with 'stem<width>'")
        return cls(int(head[4:]), tuple(StageSpec.from_token(t) for t in tokens))

    def to_parameters(self) -> dict[str, int]:
        """The NNI parameter dict this spec decodes from (strides are builder policy, not parameters)."""
        params: dict[str, int] = {"stem_width": self.stem_width}
        for i, stage in enumerate(self.stages, start=1):
            for field in STAGE_FIELDS:
                params[f"stage{i}_{field}"] = getattr(stage, field)
        return params


def _int_param(parameters: Mapping[str, Any], key: str, minimum: int) -> int:
    if key not in parameters:
        raise ValueError(f"missing parameter {key!r}")
    value = parameters[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # some tuners hand back randint values as floats
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"parameter {key!r} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"parameter {key!r} must be >= {minimum}, got {value}")
    return value


def decode_parameters(parameters: Mapping[str, Any], *, ignore: Collection[str] = (),
                      stage_strides: Sequence[int] = DEFAULT_STAGE_STRIDES) -> MacroSpec:
    """Parameter dict -> MacroSpec. Missing, malformed or unknown keys raise ValueError naming the key.

    `ignore` lists keys that belong to someone else (training hyperparameters such as `lr`).
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
    stem_width = _int_param(parameters, "stem_width", 1)
    indices = set()
    for key in parameters:
        match = _STAGE_KEY.match(str(key))
        if match:
            if match.group(2) not in STAGE_FIELDS:
                raise ValueError(f"unknown parameter {key!r}: stage fields are {', '.join(STAGE_FIELDS)}")
            indices.add(int(match.group(1)))
        elif key != "stem_width" and key not in ignore:
            raise ValueError(f"unknown parameter {key!r} for the macro MobileNet space")
    if not indices:
        raise ValueError("missing parameter 'stage1_depth': the macro space needs at least one stage")
    stages = []
    for i in range(1, max(indices) + 1):
        depth = _int_param(parameters, f"stage{i}_depth", 0)
        width = _int_param(parameters, f"stage{i}_width", 1)
        kernel = _int_param(parameters, f"stage{i}_kernel", 1)
        if kernel % 2 == 0:
            raise ValueError(f"parameter 'stage{i}_kernel' must be odd, got {kernel}")
        expansion = _int_param(parameters, f"stage{i}_expansion", 1)
        stride = stage_strides[i - 1] if i <= len(stage_strides) else 1
        stages.append(StageSpec(depth, width, kernel, expansion, stride))
    if all(s.depth == 0 for s in stages):
        raise ValueError("parameters 'stage*_depth' are all 0: the network would have no blocks")
    return MacroSpec(stem_width, tuple(stages))


class MacroMobileNet(nn.Module):
    """Stem conv -> stages of inverted residuals -> global pool -> linear. Widths are rounded
    to multiples of `channel_divisor` (builder policy)."""

    def __init__(self, spec: MacroSpec, *, num_classes: int = 10, in_channels: int = 1,
                 channel_divisor: int = 8) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
        self.spec = spec
        channels = self.stem_channels = round_channels(spec.stem_width, channel_divisor)
        self.stem = ConvBNAct(in_channels, channels, kernel_size=3, stride=1)
        blocks: list[nn.Module] = []
        for stage in spec.stages:
            width = round_channels(stage.width, channel_divisor)
            for b in range(stage.depth):
                blocks.append(InvertedResidual(channels, width, stage.kernel,
                                               stage.stride if b == 0 else 1, stage.expansion))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = ClassifierHead(channels, num_classes)

    @property
    def network_key(self) -> str:
        """Identifies the layers built, block by block with widths as rounded: equal for parameter
        dicts that build the same network (a skipped stage's settings do not matter, and stage 3
        at depth 4 with stage 4 off builds what stage 3 at depth 1 and stage 4 at depth 3 build
        when their settings match)."""
        return "|".join([f"macro|stem{self.stem_channels}"] + [block.layer_token() for block in self.blocks])

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_macro_mobilenet(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 1,
                          ignore: Collection[str] = (), channel_divisor: int = 8,
                          stage_strides: Sequence[int] = DEFAULT_STAGE_STRIDES) -> MacroMobileNet:
    """Build the network a parameter dict of search_spaces/mobilenet_macro.json describes."""
    spec = decode_parameters(parameters, ignore=ignore, stage_strides=stage_strides)
    return MacroMobileNet(spec, num_classes=num_classes, in_channels=in_channels,
                          channel_divisor=channel_divisor)
