"""A user's own network plugged in through an importable builder (used by tests/test_prototypes.py).

    python -m nni_gensynth.trial --builder user_builder_example:build_tiny_net ...

with a search space whose keys the builder reads: {"width": choice, "kernel": choice}.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping

from torch import nn

TINY_SPACE = {"width": {"_type": "choice", "_value": [4, 8]}, "kernel": {"_type": "choice", "_value": [1, 3]}}


def build_tiny_net(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 1,
                   ignore: Collection[str] = ()) -> nn.Module:
    unknown = set(parameters) - {"width", "kernel"} - set(ignore)
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0]!r} for the tiny net")
    width, kernel = int(parameters["width"]), int(parameters["kernel"])
    return nn.Sequential(nn.Conv2d(in_channels, width, kernel, padding=kernel // 2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
