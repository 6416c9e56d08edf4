"""Model builders: a parameter dict from an NNI search space -> a torch.nn.Module.

`build_model(parameters, builder="macro_mobilenet")` dispatches to a registered builder or to a
user's own one given as "package.module:callable". A builder is called as
`fn(parameters, *, num_classes, in_channels, ignore, **options) -> nn.Module`, where `ignore`
names the keys that are training hyperparameters rather than architecture.
Prototype spaces (MobileNetV2, ResNet-18) register here beside the macro space.
"""
from __future__ import annotations

from ..importing import import_callable
from typing import Any, Callable, Mapping

from torch import nn

from ..training import HYPERPARAMETER_KEYS

# name -> "module:callable"; imported on first use.
BUILDERS: dict[str, str] = {
    "macro_mobilenet": "nni_gensynth.models.macro_mobilenet:build_macro_mobilenet",
}
DEFAULT_BUILDER = "macro_mobilenet"


def resolve_builder(builder: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A registered builder name, a "module:callable" path, or a callable -> the callable."""
    if callable(builder):
        return builder
    if not isinstance(builder, str) or not builder:
        raise TypeError(f"builder must be a name, 'module:callable' or a callable, got {builder!r}")
    target = BUILDERS.get(builder, builder)
    if ":" not in target:
        raise ValueError(f"unknown builder {builder!r}: registered are {sorted(BUILDERS)}, "
                         f"or give 'package.module:callable'")
    return import_callable(target, "builder")


def build_model(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 1,
                builder: str | Callable[..., nn.Module] = DEFAULT_BUILDER, **options: Any) -> nn.Module:
    """Build the network that `parameters` describe. Training hyperparameters (`lr`, ...) in the
    dict are ignored; missing, malformed or unknown architecture keys raise ValueError naming the key."""
    fn = resolve_builder(builder)
    return fn(parameters, num_classes=num_classes, in_channels=in_channels,
              ignore=HYPERPARAMETER_KEYS, **options)


__all__ = ["BUILDERS", "DEFAULT_BUILDER", "build_model", "resolve_builder"]
