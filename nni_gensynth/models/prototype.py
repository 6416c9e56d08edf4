"""What prototype-derived spaces share: width options, parameter reading, probe sites.

A prototype space is derived from a human-designed network (MobileNetV2, ResNet-18): every
width may shrink to a fraction of the prototype's, blocks whose input and output shapes match
may be kept or skipped, and so on. The prototype's own parameter dict (full widths, every block
kept) is GenSynth's `prototype`. A built network names its `probe_sites()`: for each decision of
the space that probing can answer, the module whose output carries it (see nni_gensynth.probing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from torch import nn

from .blocks import round_channels

# Fractions of a prototype width that the derived spaces offer (rounded to multiples of 8).
WIDTH_FRACTIONS = (0.25, 0.375, 0.5, 0.75, 1.0)
KEEP, SKIP = "keep", "skip"
BLOCK_OPTIONS = (KEEP, SKIP)


def width_options(base: int, fractions: Sequence[float] = WIDTH_FRACTIONS, divisor: int = 8) -> list[int]:
    """Distinct channel counts offered for a layer whose prototype width is `base`."""
    return sorted({round_channels(base * f, divisor) for f in fractions} | {base})


def choice(options: Sequence[Any]) -> dict[str, Any]:
    """An NNI choice entry."""
    return {"_type": "choice", "_value": list(options)}


@dataclass(frozen=True)
class ProbeSite:
    """One decision that probing can answer, and where in the built network it lives.

    kind "width": `module`'s output channels are the decision's channels; a decision value v
    stands for v * `unit` channels (unit 1 for a width, the input channels for an expansion
    ratio). kind "block": `module` is a removable block's residual branch; zeroing its output
    is removing the block. `options` is the decision's domain in the space.
    """

    decision: str
    kind: str
    module: nn.Module
    options: tuple
    current: Any
    unit: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("width", "block"):
            raise ValueError(f"ProbeSite.kind must be 'width' or 'block', got {self.kind!r}")


class ParameterReader:
    """Reads a flat parameter dict strictly: every key known, every value of the right kind."""

    def __init__(self, parameters: Mapping[str, Any], known: Collection[str], ignore: Collection[str],
                 space_name: str) -> None:
        if not isinstance(parameters, Mapping):
            raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
        unknown = sorted(str(k) for k in parameters if k not in known and k not in ignore)
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} for the {space_name} space")
        self.parameters = parameters

    def positive_int(self, key: str) -> int:
        if key not in self.parameters:
            raise ValueError(f"missing parameter {key!r}")
        value = self.parameters[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"parameter {key!r} must be a positive integer, got {value!r}")
        return value

    def odd_kernel(self, key: str) -> int:
        value = self.positive_int(key)
        if value % 2 == 0:
            raise ValueError(f"parameter {key!r} must be odd, got {value}")
        return value

    def one_of(self, key: str, options: Sequence[str]) -> str:
        if key not in self.parameters:
            raise ValueError(f"missing parameter {key!r}")
        value = self.parameters[key]
        if value not in options:
            raise ValueError(f"parameter {key!r} must be one of {list(options)}, got {value!r}")
        return value
