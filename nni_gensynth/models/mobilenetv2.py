"""MobileNetV2 prototype for 32x32 inputs, and the search space derived from it.

The prototype is MobileNetV2 at width 1.0 (Sandler et al., "MobileNetV2: Inverted Residuals
and Linear Bottlenecks", CVPR 2018, Table 2): a 3x3 stem of 32 channels, 17 inverted-residual
blocks in 7 stages (t, c, n, s below), a 1x1 conv to 1280 channels, pooling and a classifier.
CIFAR-style for 32x32 inputs: the stem and the first stride-2 stage (c=24) use stride 1, so
the feature maps are 32 -> 16 -> 8 -> 4 (the first stage, c=16, has stride 1 in the paper too).

Derived space (search_spaces/mobilenetv2_prototype.json, `search_space()`); all keys flat:
    stem_width, head_width          channels, fractions of 32 and 1280
    s{i}_width   i = 1..7           output channels of every block of stage i
    b{j}_expansion  j = 2..17       expansion ratio t of block j (block 1 keeps t = 1)
    b{j}_kernel     j = 1..17       depthwise kernel, 3 or 5
    b{j}_block   for the 10 blocks that are not first in their stage (stride 1, input and
                 output shapes equal): "keep" or "skip" (a skipped block is removed)
`prototype_parameters()` is the prototype itself (full widths, t = 6, k = 3, every block kept).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping

from torch import Tensor, nn

from .blocks import ClassifierHead, ConvBNAct, InvertedResidual
from .prototype import BLOCK_OPTIONS, KEEP, SKIP, ParameterReader, ProbeSite, choice, width_options

# (expansion t, output channels c, repeats n, stride s) per stage, Sandler et al. 2018, Table 2.
PAPER_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))
CIFAR_STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_WIDTH, HEAD_WIDTH = 32, 1280
EXPANSION_OPTIONS = (1, 2, 3, 4, 6)
KERNEL_OPTIONS = (3, 5)


@dataclass(frozen=True)
class BlockSlot:
    """Block j of the prototype: its stage (1-based), whether it is the stage's first, stride."""

    index: int
    stage: int
    first: bool
    stride: int
    prototype_expansion: int

    @property
    def removable(self) -> bool:
        return not self.first


def block_slots() -> list[BlockSlot]:
    slots: list[BlockSlot] = []
    for stage, ((t, _c, n, _s), stride) in enumerate(zip(PAPER_STAGES, CIFAR_STAGE_STRIDES), start=1):
        for b in range(n):
            slots.append(BlockSlot(len(slots) + 1, stage, b == 0, stride if b == 0 else 1, t))
    return slots


SLOTS = block_slots()


def search_space() -> dict[str, Any]:
    """The NNI search space derived from the prototype (written to search_spaces/)."""
    space: dict[str, Any] = {"stem_width": choice(width_options(STEM_WIDTH))}
    for i, (_t, c, _n, _s) in enumerate(PAPER_STAGES, start=1):
        space[f"s{i}_width"] = choice(width_options(c))
    for slot in SLOTS:
        if slot.prototype_expansion != 1:
            space[f"b{slot.index}_expansion"] = choice(EXPANSION_OPTIONS)
        space[f"b{slot.index}_kernel"] = choice(KERNEL_OPTIONS)
        if slot.removable:
            space[f"b{slot.index}_block"] = choice(BLOCK_OPTIONS)
    space["head_width"] = choice(width_options(HEAD_WIDTH))
    return space


def prototype_parameters() -> dict[str, Any]:
    """MobileNetV2 width 1.0 itself, as a parameter dict of `search_space()`."""
    params: dict[str, Any] = {"stem_width": STEM_WIDTH}
    for i, (_t, c, _n, _s) in enumerate(PAPER_STAGES, start=1):
        params[f"s{i}_width"] = c
    for slot in SLOTS:
        if slot.prototype_expansion != 1:
            params[f"b{slot.index}_expansion"] = slot.prototype_expansion
        params[f"b{slot.index}_kernel"] = 3
        if slot.removable:
            params[f"b{slot.index}_block"] = KEEP
    params["head_width"] = HEAD_WIDTH
    return params


@dataclass(frozen=True)
class BlockSpec:
    index: int
    stage: int
    in_channels: int
    out_channels: int
    kernel: int
    expansion: int
    stride: int

    def token(self) -> str:
        return f"b{self.index}:k{self.kernel}e{self.expansion}s{self.stride}c{self.out_channels}"


@dataclass(frozen=True)
class MobileNetV2Spec:
    """The network a parameter dict describes (skipped blocks absent)."""

    stem_width: int
    blocks: tuple[BlockSpec, ...]
    head_width: int

    def arch_string(self) -> str:
        return "|".join([f"stem{self.stem_width}"] + [b.token() for b in self.blocks] + [f"head{self.head_width}"])


def decode_parameters(parameters: Mapping[str, Any], *, ignore: Collection[str] = ()) -> MobileNetV2Spec:
    """Parameter dict -> spec; missing, malformed or unknown keys raise ValueError naming the key."""
    reader = ParameterReader(parameters, search_space().keys(), ignore, "MobileNetV2 prototype")
    stem = reader.positive_int("stem_width")
    channels = stem
    blocks: list[BlockSpec] = []
    for slot in SLOTS:
        width = reader.positive_int(f"s{slot.stage}_width")
        kernel = reader.odd_kernel(f"b{slot.index}_kernel")
        expansion = reader.positive_int(f"b{slot.index}_expansion") if slot.prototype_expansion != 1 else 1
        if slot.removable and reader.one_of(f"b{slot.index}_block", BLOCK_OPTIONS) == SKIP:
            continue
        blocks.append(BlockSpec(slot.index, slot.stage, channels, width, kernel, expansion, slot.stride))
        channels = width
    return MobileNetV2Spec(stem, tuple(blocks), reader.positive_int("head_width"))


class MobileNetV2(nn.Module):
    """Stem -> inverted residuals -> 1x1 conv head -> pool -> linear, from a MobileNetV2Spec."""

    def __init__(self, spec: MobileNetV2Spec, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
        self.spec = spec
        self.stem = ConvBNAct(in_channels, spec.stem_width, kernel_size=3, stride=1)
        self.blocks = nn.ModuleList(InvertedResidual(b.in_channels, b.out_channels, b.kernel, b.stride, b.expansion)
                                    for b in spec.blocks)
        last = spec.blocks[-1].out_channels if spec.blocks else spec.stem_width
        self.head_conv = ConvBNAct(last, spec.head_width, kernel_size=1)
        self.head = ClassifierHead(spec.head_width, num_classes)

    @property
    def network_key(self) -> str:
        """Identifies the layers built: equal for parameter dicts that build the same network
        (skipped blocks' settings do not matter, nor which prototype blocks the kept ones were:
        blocks 8 and 10 kept build what blocks 8 and 11 kept build when their settings match)."""
        return "|".join(["mobilenetv2", f"stem{self.spec.stem_width}"]
                        + [block.layer_token() for block in self.blocks] + [f"head{self.spec.head_width}"])

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.head_conv(x))

    def probe_sites(self) -> list[ProbeSite]:
        """Where each decision of the space lives in this network (see nni_gensynth.probing)."""
        space = search_space()
        options = {name: tuple(entry["_value"]) for name, entry in space.items()}
        sites = [ProbeSite("stem_width", "width", self.stem, options["stem_width"], self.spec.stem_width)]
        last_of_stage: dict[int, tuple[BlockSpec, nn.Module]] = {}
        for spec, block in zip(self.spec.blocks, self.blocks):
            last_of_stage[spec.stage] = (spec, block)
            if spec.expansion != 1 or f"b{spec.index}_expansion" in options:
                hidden = block.block[-2]  # the depthwise conv's output: the expanded channels
                sites.append(ProbeSite(f"b{spec.index}_expansion", "width", hidden,
                                       options[f"b{spec.index}_expansion"], spec.expansion, float(spec.in_channels)))
            if f"b{spec.index}_block" in options and block.use_residual:
                sites.append(ProbeSite(f"b{spec.index}_block", "block", block.block, BLOCK_OPTIONS, KEEP))
        for stage, (spec, block) in sorted(last_of_stage.items()):
            sites.append(ProbeSite(f"s{stage}_width", "width", block, options[f"s{stage}_width"], spec.out_channels))
        sites.append(ProbeSite("head_width", "width", self.head_conv, options["head_width"], self.spec.head_width))
        return sites


def build_mobilenetv2(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 3,
                      ignore: Collection[str] = ()) -> MobileNetV2:
    """Build the network a parameter dict of search_spaces/mobilenetv2_prototype.json describes."""
    return MobileNetV2(decode_parameters(parameters, ignore=ignore), num_classes=num_classes,
                       in_channels=in_channels)
