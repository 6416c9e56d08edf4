"""Model builders: a parameter dict from an NNI search space -> a torch.nn.Module.

`build_model(parameters, builder="macro_mobilenet")` dispatches to a registered builder or to a
user's own one given as "package.module:callable". A builder is called as
`fn(parameters, *, num_classes, in_channels, ignore, **options) -> nn.Module`, where `ignore`
names the keys that are training hyperparameters rather than architecture.
Prototype spaces (MobileNetV2, ResNet-18) register here beside the macro space; their
prototype parameter dicts are in PROTOTYPES.

Your own network: write `def my_builder(parameters, *, num_classes, in_channels, ignore, **kw)`
in an importable module, an NNI search-space JSON whose keys it reads, and pass
`--builder my_package.my_module:my_builder` to `python -m nni_gensynth.trial` (or
`build_model(params, builder="my_package.my_module:my_builder")`). If the returned module has
`probe_sites()` (see nni_gensynth.models.prototype.ProbeSite), trials also report probe responses.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from ..defaults import DEFAULT_BUILDER
from ..importing import import_callable
from ..training import HYPERPARAMETER_KEYS

# name -> "module:callable"; imported on first use.
BUILDERS: dict[str, str] = {
    "macro_mobilenet": "nni_gensynth.models.macro_mobilenet:build_macro_mobilenet",
    "mobilenetv2": "nni_gensynth.models.mobilenetv2:build_mobilenetv2",
    "resnet18": "nni_gensynth.models.resnet:build_resnet18",
}
# builder name -> "module:callable" returning the prototype's own parameter dict (GenSynth's
# `prototype`); its module's `search_space()` gives the derived space.
PROTOTYPES: dict[str, str] = {
    "mobilenetv2": "nni_gensynth.models.mobilenetv2:prototype_parameters",
    "resnet18": "nni_gensynth.models.resnet:prototype_parameters",
}


def resolve_builder(builder: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A registered builder name, a "module:callable" path, or a callable -> the callable."""
    if callable(builder):
        return builder
    return _registered(builder, BUILDERS, "builder")


def _registered(name: Any, registry: Mapping[str, str], what: str) -> Callable[..., Any]:
    """The callable a registry name or "package.module:callable" names (TypeError/ValueError
    naming `what` otherwise)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} must be a name or 'package.module:callable', got {name!r}")
    target = registry.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown {what} {name!r}: registered are {sorted(registry)}, "
                         f"or give 'package.module:callable'")
    return import_callable(target, what)


def prototype_parameters(prototype: str) -> dict[str, Any]:
    """The parameter dict of a registered prototype ("mobilenetv2", "resnet18") or of
    "package.module:function" returning one; ValueError naming the prototype otherwise."""
    parameters = _registered(prototype, PROTOTYPES, "prototype")()
    if not isinstance(parameters, Mapping) or not parameters:
        raise ValueError(f"prototype {prototype!r} did not give a parameter dict (got {type(parameters).__name__})")
    return dict(parameters)


def build_model(parameters: Mapping[str, Any], *, num_classes: int = 10, in_channels: int = 1,
                builder: str | Callable[..., nn.Module] = DEFAULT_BUILDER, **options: Any) -> nn.Module:
    """Build the network that `parameters` describe. Training hyperparameters (`lr`, ...) in the
    dict are ignored; missing, malformed or unknown architecture keys raise ValueError naming the key."""
    fn = resolve_builder(builder)
    return fn(parameters, num_classes=num_classes, in_channels=in_channels,
              ignore=HYPERPARAMETER_KEYS, **options)


__all__ = ["BUILDERS", "DEFAULT_BUILDER", "PROTOTYPES", "build_model", "prototype_parameters", "resolve_builder"]
