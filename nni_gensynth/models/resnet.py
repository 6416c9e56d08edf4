"""ResNet-18-style prototype for 32x32 inputs, and the search space derived from it.

The prototype follows He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016):
BasicBlocks (two 3x3 convs) in four stages of 2 blocks with 64, 128, 256, 512 channels; the
first block of stages 2-4 downsamples by 2 with a 1x1 projection shortcut. CIFAR stem: one
3x3 conv of 64 channels, stride 1, no max-pool.

Derived space (search_spaces/resnet18_prototype.json, `search_space()`); all keys flat:
    s{i}_width    i = 1..4    output channels of stage i (stage 1's width is the stem's too,
                              since its blocks keep identity shortcuts)
    b{j}_mid      j = 1..8    channels between the two convs of block j
    b{j}_block    j = 1, 2, 4, 6, 8  (stride 1, identity shortcut): "keep" or "skip"
    b{j}_shortcut j = 1..8    which long-range (shortcut) connections remain: "keep" or "drop"
                              (a dropped shortcut makes the block a plain two-conv block)
`prototype_parameters()` is the prototype itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ClassifierHead
from .prototype import BLOCK_OPTIONS, KEEP, SKIP, ParameterReader, ProbeSite, choice, width_options

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2
SHORTCUT_OPTIONS = ("keep", "drop")


def _slots() -> list[tuple[int, int, bool]]:
    """(block index j, stage i, first block of a downsampling stage)."""
    out = []
    for stage in range(1, len(STAGE_WIDTHS) + 1):
        for b in range(BLOCKS_PER_STAGE):
            out.append((len(out) + 1, stage, b == 0 and stage > 1))
    return out


SLOTS = _slots()


def search_space() -> dict[str, Any]:
    """The NNI search space derived from the prototype (written to search_spaces/)."""
    space: dict[str, Any] = {}
    for i, c in enumerate(STAGE_WIDTHS, start=1):
        space[f"s{i}_width"] = choice(width_options(c))
    for j, stage, downsample in SLOTS:
        space[f"b{j}_mid"] = choice(width_options(STAGE_WIDTHS[stage - 1]))
        if not downsample:
            space[f"b{j}_block"] = choice(BLOCK_OPTIONS)
        space[f"b{j}_shortcut"] = choice(SHORTCUT_OPTIONS)
    return space


def prototype_parameters() -> dict[str, Any]:
    """ResNet-18 (CIFAR stem) itself, as a parameter dict of `search_space()`."""
    params: dict[str, Any] = {f"s{i}_width": c for i, c in enumerate(STAGE_WIDTHS, start=1)}
    for j, stage, downsample in SLOTS:
        params[f"b{j}_mid"] = STAGE_WIDTHS[stage - 1]
        if not downsample:
            params[f"b{j}_block"] = KEEP
        params[f"b{j}_shortcut"] = "keep"
    return params


@dataclass(frozen=True)
class BasicBlockSpec:
    index: int
    stage: int
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    shortcut: bool

    def token(self) -> str:
        return f"b{self.index}:m{self.mid_channels}c{self.out_channels}s{self.stride}{'' if self.shortcut else 'p'}"

    def layer_token(self) -> str:
        """What this block builds, without its place in the prototype (ResNet.network_key)."""
        return (f"bb{self.in_channels}-{self.mid_channels}-{self.out_channels}s{self.stride}"
                f"{'' if self.shortcut else 'p'}")


@dataclass(frozen=True)
class ResNetSpec:
    stem_width: int
    blocks: tuple[BasicBlockSpec, ...]

    def arch_string(self) -> str:
        return "|".join([f"stem{self.stem_width}"] + [b.token() for b in self.blocks])


def decode_parameters(parameters: Mapping[str, Any], *, ignore: Collection[str] = ()) -> ResNetSpec:
    """Parameter dict -> spec; missing, malformed or unknown keys raise ValueError naming the key."""
    reader = ParameterReader(parameters, search_space().keys(), ignore, "ResNet-18 prototype")
    stem = channels = reader.positive_int("s1_width")
    blocks: list[BasicBlockSpec] = []
    for j, stage, downsample in SLOTS:
        width = reader.positive_int(f"s{stage}_width")
        mid = reader.positive_int(f"b{j}_mid")
        shortcut = reader.one_of(f"b{j}_shortcut", SHORTCUT_OPTIONS) == "keep"
        if not downsample and reader.one_of(f"b{j}_block", BLOCK_OPTIONS) == SKIP:
            continue
        blocks.append(BasicBlockSpec(j, stage, channels, mid, width, 2 if downsample else 1, shortcut))
        channels = width
    return ResNetSpec(stem, tuple(blocks))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN (the residual branch) + shortcut, then ReLU. The shortcut is
    the identity when shapes match, a 1x1 conv + BN when they do not, and absent when dropped."""

    def __init__(self, spec: BasicBlockSpec) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(spec.in_channels, spec.mid_channels, 3, spec.stride, 1, bias=False),
            nn.BatchNorm2d(spec.mid_channels), nn.ReLU(inplace=True),
            nn.Conv2d(spec.mid_channels, spec.out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(spec.out_channels))
        self.shortcut: Optional[nn.Module] = None
        self.identity = spec.shortcut and spec.stride == 1 and spec.in_channels == spec.out_channels
        if spec.shortcut and not self.identity:
            self.shortcut = nn.Sequential(nn.Conv2d(spec.in_channels, spec.out_channels, 1, spec.stride, bias=False),
                                          nn.BatchNorm2d(spec.out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch(x)
        if self.identity:
            out = out + x
        elif self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, spec: ResNetSpec, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
        self.spec = spec
        self.stem = nn.Sequential(nn.Conv2d(in_channels, spec.stem_width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(spec.stem_width), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(BasicBlock(b) for b in spec.blocks)
        last = spec.blocks[-1].out_channels if spec.blocks else spec.stem_width
        self.head = ClassifierHead(last, num_classes)

    @property
    def network_key(self) -> str:
        """Identifies the layers built: equal for parameter dicts that build the same network."""
        return "|".join(["resnet18", f"stem{self.spec.stem_width}"] + [b.layer_token() for b in self.spec.blocks])

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def probe_sites(self) -> list[ProbeSite]:
        """Where each decision of the space lives in this network (see nni_gensynth.probing)."""
        options = {name: tuple(entry["_value"]) for name, entry in search_space().items()}
        sites: list[ProbeSite] = []
        last_of_stage: dict[int, tuple[BasicBlockSpec, nn.Module]] = {1: (None, self.stem)}  # type: ignore[dict-item]
        for spec, block in zip(self.spec.blocks, self.blocks):
            last_of_stage[spec.stage] = (spec, block)
            sites.append(ProbeSite(f"b{spec.index}_mid", "width", block.branch[2], options[f"b{spec.index}_mid"],
                                   spec.mid_channels))
            if f"b{spec.index}_block" in options and block.identity:
                sites.append(ProbeSite(f"b{spec.index}_block", "block", block.branch, BLOCK_OPTIONS, KEEP))
        for stage, (spec, module) in sorted(last_of_stage.items()):
            current = self.spec.stem_width if spec is None else spec.out_channels
            sites.append(ProbeSite(f"s{stage}_width", "width", module, options[f"s{stage}_width"], current))
        return sites


def build_resnet18(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 3,
                   ignore: Collection[str] = ()) -> ResNet:
    """Build the network a parameter dict of search_spaces/resnet18_prototype.json describes."""
    return ResNet(decode_parameters(parameters, ignore=ignore), num_classes=num_classes, in_channels=in_channels)
