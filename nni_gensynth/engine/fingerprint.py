"""Stable identifiers for parameter dicts, shared by the engine, the caches and the reports."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping


def canonical_json(parameters: Mapping[str, Any]) -> str:
    """The one canonical text of a parameter dict: sorted keys, no spaces, floats as repr."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), allow_nan=False)


def text_hash(text: str) -> str:
    """A 16-hex-digit fingerprint of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def architecture_hash(parameters: Mapping[str, Any]) -> str:
    """A 16-hex-digit fingerprint of a parameter dict (same dict, same hash, across runs and hosts)."""
    return text_hash(canonical_json(parameters))
