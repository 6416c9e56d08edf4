"""Resolving "package.module:callable" references from configuration (builders, profilers)."""
from __future__ import annotations

import importlib
from typing import Callable


def import_callable(reference: str, what: str) -> Callable:
    """The callable named by "package.module:callable"; ValueError naming `what` when the
    reference is malformed, cannot be imported, or is not callable."""
    if not isinstance(reference, str) or reference.count(":") != 1 or reference.startswith(":") \
            or reference.endswith(":"):
        raise ValueError(f"{what} must be 'package.module:callable', got {reference!r}")
    module_name, attr = reference.split(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{what} {reference!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise ValueError(f"{what} {reference!r} is not callable")
    return fn
